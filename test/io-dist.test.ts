import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "tsup";
import type { Options } from "tsup";
import configs from "../tsup.config.js";
import { tempDir } from "./helpers/tmp.js";

/**
 * The build as shipped: the tsup config (without types and source maps, to
 * stay fast) into a folder inside the project (so the built files resolve
 * the project's dependencies and its "type": "module"), then the ESM and CJS
 * library and the CLI run from there, worker threads included.
 */
const out = path.resolve(`.dist-test-${process.pid}`);
const work = tempDir("des-io-dist-");

beforeAll(async () => {
  const list = (Array.isArray(configs) ? configs : [configs]) as Options[];
  for (const c of list)
    await build({ ...c, outDir: out, dts: false, sourcemap: false, clean: false, silent: true, config: false });
}, 120_000);

afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

/** Counts worker threads started in a process, and whether each came online without an error. */
const COUNTER = `
const fs = require("node:fs");
const seen = { started: 0, online: 0, errors: [] };
process.on("worker", (w) => {
  seen.started++;
  w.once("online", () => seen.online++);
  w.on("error", (e) => seen.errors.push(String(e && e.message)));
});
process.on("exit", () => fs.writeSync(2, "\\nWORKERS " + JSON.stringify(seen) + "\\n"));
`;

function run(
  args: string[],
  input?: string,
): {
  status: number | null;
  stdout: string;
  stderr: string;
  workers: { started: number; online: number; errors: string[] };
} {
  const counter = path.join(work, "counter.cjs");
  fs.writeFileSync(counter, COUNTER);
  const r = spawnSync(process.execPath, ["--require", counter, ...args], {
    encoding: "utf8",
    input,
    cwd: work,
    timeout: 60_000,
  });
  const m = /WORKERS (\{.*\})/.exec(r.stderr);
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    workers: m ? JSON.parse(m[1]!) : { started: 0, online: 0, errors: [] },
  };
}

/** Writes an archive with the built library, then reads it back with batches until the batch thread serves them. */
const LIBRARY_SCRIPT = (lib: string): string =>
  `
const { DesWriter, DesReader, FileSource } = LIB;
const file = ${JSON.stringify(path.join(work, "lib.des"))};
(async () => {
  const w = await DesWriter.create(file, { overwrite: true });
  // Gaps between the entries asked for, so a batch is many ranges (one per entry), read by the batch thread.
  for (let i = 0; i < 300; i++) {
    await w.add("e" + i, new Uint8Array(100 + i).fill(i & 0xff));
    await w.add("pad" + i, new Uint8Array(8192));
  }
  await w.close();
  const r = await DesReader.open(await FileSource.open(file));
  const names = Array.from({ length: 300 }, (_, i) => "e" + i);
  let rounds = 0;
  const deadline = Date.now() + 10000;
  do {
    const got = await r.getMany(names);
    for (let i = 0; i < 300; i++) {
      const b = got.get("e" + i);
      if (!b || b.length !== 100 + i || b[0] !== (i & 0xff)) throw new Error("wrong bytes for e" + i);
    }
    rounds++;
    await new Promise((res) => setTimeout(res, 20));
  } while (Date.now() < deadline && !globalThis.__online());
  await r.close();
  console.log("ok " + rounds);
})().catch((e) => { console.error(e); process.exit(1); });
`.replace("LIB", lib);

const ONLINE = `let __n = 0; process.on("worker", (w) => w.once("online", () => __n++)); globalThis.__online = () => __n > 0;`;

describe("the build (issue 6 item 7: workers as files of their own)", () => {
  it("ships both workers as ESM and CJS files beside the library", () => {
    for (const f of [
      "file-batch-worker.js",
      "file-batch-worker.cjs",
      "read-ahead-worker.js",
      "read-ahead-worker.cjs",
      "index.js",
      "index.cjs",
      "cli.js",
    ]) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    // No worker source evaluated from a string any more.
    for (const f of ["index.js", "index.cjs", "cli.js"])
      expect(fs.readFileSync(path.join(out, f), "utf8")).not.toMatch(/parentPort\??\.on\(/);
  });

  it("the ESM library writes and reads, its batch reader thread starting from dist/file-batch-worker.js", () => {
    const script = path.join(work, "esm.mjs");
    fs.writeFileSync(
      script,
      `${ONLINE}\nimport * as lib from ${JSON.stringify(path.join(out, "index.js"))};\n${LIBRARY_SCRIPT("lib")}`,
    );
    const r = run([script]);
    expect(r.stderr.replace(/\nWORKERS.*\n/, "")).toBe("");
    expect(r.stdout).toMatch(/^ok \d+/);
    expect(r.status).toBe(0);
    expect(r.workers.started).toBe(1);
    expect(r.workers.online).toBe(1);
    expect(r.workers.errors).toEqual([]);
  });

  it("the CJS library does the same from dist/file-batch-worker.cjs", () => {
    const script = path.join(work, "cjs.cjs");
    fs.writeFileSync(
      script,
      `${ONLINE}\nconst lib = require(${JSON.stringify(path.join(out, "index.cjs"))});\n${LIBRARY_SCRIPT("lib")}`,
    );
    const r = run([script]);
    expect(r.stdout).toMatch(/^ok \d+/);
    expect(r.status).toBe(0);
    expect(r.workers.online).toBe(1);
    expect(r.workers.errors).toEqual([]);
  });

  it("the built CLI packs a folder with its read-ahead threads (dist/read-ahead-worker.js), and the archive reads back", () => {
    const tree = path.join(work, "tree");
    for (let i = 0; i < 1500; i++) {
      const d = path.join(tree, `d${i % 10}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 7)));
    }
    const archive = path.join(work, "tree.des");
    const r = run([path.join(out, "cli.js"), "pack", tree, archive, "--no-metadata"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.workers.started).toBeGreaterThanOrEqual(1);
    expect(r.workers.online).toBe(r.workers.started);
    expect(r.workers.errors).toEqual([]);
    const check = path.join(work, "check.mjs");
    fs.writeFileSync(
      check,
      `import { DesReader } from ${JSON.stringify(path.join(out, "index.js"))};
const r = await DesReader.open(${JSON.stringify(archive)});
const names = await r.list();
const b = await r.get("d3/f13.txt");
console.log(names.length, Buffer.from(b).toString() === "file 13\\n".repeat(7));
await r.close();`,
    );
    const c = run([check]);
    expect(c.stdout.trim()).toBe("1500 true");
  });
});
