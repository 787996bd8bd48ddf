import { execFileSync } from "node:child_process";
import path from "node:path";
import { build } from "esbuild";
import type { Metafile } from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { DesWriter } from "../src/write/writer.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-lazy-");
const archive = path.join(dir, "a.des");
let meta: Metafile;

beforeAll(async () => {
  await DesWriter.write(archive, {}, async (w) => {
    await w.add("plain", new Uint8Array(1000).fill(1));
    await w.add("zipped", new Uint8Array(5000).fill(2), { compress: "gzip" });
    await w.add("with-meta", new Uint8Array(10).fill(3), { meta: { kind: "note", n: 7 } });
  });
  // The same splitting an application bundle (the Lambda example) gets.
  const res = await build({
    entryPoints: { child: path.resolve("test/lazy-loading-child.mts") },
    outdir: path.join(dir, "out"),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    metafile: true,
    logLevel: "error",
  });
  meta = res.metafile;
}, 30_000);

/** Inputs of the chunks loaded at start: the entry and its static imports, not the lazily imported chunks. */
function eagerInputs(m: Metafile): string[] {
  const entry = Object.keys(m.outputs).find((o) => o.endsWith("child.mjs"))!;
  const seen = new Set<string>();
  const visit = (o: string): void => {
    if (seen.has(o)) return;
    seen.add(o);
    for (const i of m.outputs[o]?.imports ?? []) if (i.kind === "import-statement" && !i.external) visit(i.path);
  };
  visit(entry);
  return [...seen].flatMap((o) => Object.keys(m.outputs[o]!.inputs));
}

describe("what a reader loads at start, and when it loads the rest", () => {
  it("the MessagePack and Python-JSON codecs, the xxhash-wasm loader and verify() are chunks of their own, not loaded at start", () => {
    const eager = eagerInputs(meta);
    expect(eager.some((f) => f.includes("src/read/reader.ts"))).toBe(true);
    for (const lazy of [
      "@msgpack/msgpack",
      "meta-codec.ts",
      "pyjson-loads.ts",
      "node_modules/xxhash-wasm",
      "src/read/verify.ts",
    ])
      expect(eager.filter((f) => f.includes(lazy))).toEqual([]);
    // ... but they are in the bundle, for the first meta read (and a runtime without synchronous WebAssembly).
    const all = Object.keys(meta.inputs);
    expect(all.some((f) => f.includes("@msgpack/msgpack"))).toBe(true);
    expect(all.some((f) => f.includes("meta-codec.ts"))).toBe(true);
  });

  it("open + get loads neither zlib, worker_threads nor the meta codec; a compressed body loads zlib, a meta read the codec", () => {
    const out = execFileSync(process.execPath, [path.join(dir, "out", "child.mjs"), archive], { encoding: "utf8" });
    const steps = JSON.parse(out) as Record<string, Record<string, unknown>>;
    expect(steps.imported).toEqual({ zlib: false, workerThreads: false, metaCodec: false });
    expect(steps.plainGet).toEqual({ zlib: false, workerThreads: false, metaCodec: false, bytes: 1000 });
    expect(steps.zippedGet).toEqual({ zlib: true, workerThreads: false, metaCodec: false, bytes: 5000 });
    expect(steps.getMeta).toEqual({ zlib: true, workerThreads: false, metaCodec: true, meta: { kind: "note", n: 7 } });
  });
});
