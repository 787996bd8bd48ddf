import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DesLockedError, DesReader, DesWriter, recoverArchive } from "../src/index.js";
import { applyChanges, baseModel, changedModel, fillBase } from "./helpers/append-plan.js";
import { tempDir } from "./helpers/tmp.js";
import { V2_FOOTER_SIZE } from "../src/format/constants.js";
import { decodeV2Footer, encodeV2Footer } from "../src/format/v2/footer.js";

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "helpers", "append-child.ts");

function run(
  archive: string,
  step: string,
  nth: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", child, archive, step, String(nth)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
}

async function contents(file: string): Promise<{ generation: number; entries: Map<string, Uint8Array> }> {
  const r = await DesReader.open(file);
  try {
    const names = await r.list();
    const entries = await r.getMany(names);
    return { generation: r.generation, entries };
  } finally {
    await r.close();
  }
}

function expectModel(got: Map<string, Uint8Array>, want: Map<string, Uint8Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, v] of want) expect(Buffer.compare(Buffer.from(got.get(k)!), Buffer.from(v)), k).toBe(0);
}

/** Runs `jobs` at most `n` at a time. */
async function bounded<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

describe("append crash safety (kill -9 in a child process)", () => {
  const dir = tempDir("des-append-crash-");
  const base = path.join(dir, "base.des");
  const ready = DesWriter.write(base, {}, fillBase);

  // Every step of the append: lock taken, pending set, each buffered write, the barrier, the footer, the end.
  const points: [string, number, 1 | 2][] = [
    ["locked", 1, 1],
    ["pending", 1, 1],
    ["write", 1, 1],
    ["write", 2, 1],
    ["write", 3, 1],
    ["write", 4, 1],
    ["before-close", 0, 1],
    ["barrier", 1, 1],
    ["footer", 1, 2],
    ["committed", 1, 2],
  ];

  it(
    "leaves generation 1 or 2 with exact contents at every step, and the next append recovers",
    { timeout: 60_000 },
    async () => {
      await ready;
      const baseBytes = fs.readFileSync(base);
      const results = await bounded(
        points.map(([step, nth], k) => async () => {
          const file = path.join(dir, `case-${k}.des`);
          fs.copyFileSync(base, file);
          return { file, outcome: await run(file, step, nth) };
        }),
        3,
      );
      for (let k = 0; k < points.length; k++) {
        const [step, nth, gen] = points[k]!;
        const { file, outcome } = results[k]!;
        expect(outcome.signal, `${step}#${nth}: ${outcome.stderr}`).toBe("SIGKILL");
        // A reader opens it (no recovery has run: the lock and any torn tail are still there).
        expect(fs.existsSync(`${file}.des-lock`)).toBe(true);
        const got = await contents(file);
        expect(got.generation, `${step}#${nth}`).toBe(gen);
        expectModel(got.entries, gen === 1 ? baseModel() : changedModel());
        // The next appender takes over the stale lock and recovers: rolled back to the exact old bytes, or kept.
        const outcome2 = await recoverArchive(file);
        if (gen === 1) {
          expect(Buffer.compare(fs.readFileSync(file), baseBytes), `${step}#${nth}`).toBe(0);
        } else {
          expect(outcome2).toBe(step === "committed" ? "clean" : "committed");
        }
        expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
        const w = await DesWriter.append(file);
        await w.add("after-crash", new Uint8Array([1, 2, 3]));
        const report = await w.close();
        expect(report.generation).toBe(gen + 1);
        const after = await contents(file);
        const want = gen === 1 ? baseModel() : changedModel();
        want.set("after-crash", new Uint8Array([1, 2, 3]));
        expectModel(after.entries, want);
      }
    },
  );

  it("survives kills at random moments of a run", { timeout: 60_000 }, async () => {
    await ready;
    const seen = new Set<number>();
    const jobs = [60, 250, 500].map((ms, k) => async () => {
      const file = path.join(dir, `random-${k}.des`);
      fs.copyFileSync(base, file);
      const p = spawn(process.execPath, ["--import", "tsx", child, file, "never", "0"], { stdio: "ignore" });
      const timer = setTimeout(() => p.kill("SIGKILL"), ms);
      await new Promise<void>((resolve) => p.on("exit", () => resolve()));
      clearTimeout(timer);
      return file;
    });
    for (const file of await bounded(jobs, 3)) {
      const got = await contents(file);
      seen.add(got.generation);
      expectModel(got.entries, got.generation === 1 ? baseModel() : changedModel());
      await recoverArchive(file);
      expect((await contents(file)).generation).toBe(got.generation);
    }
    expect([...seen].every((g) => g === 1 || g === 2)).toBe(true);
  });
});

describe("append abort, failure and the lock", () => {
  const dir = tempDir("des-append-lock-");

  it("abort truncates back to the exact bytes of generation n", async () => {
    const file = path.join(dir, "abort.des");
    await DesWriter.write(file, {}, fillBase);
    const before = fs.readFileSync(file);
    const w = await DesWriter.append(file);
    await applyChanges(w);
    expect(fs.statSync(file).size).toBeGreaterThan(before.length + 2_000_000);
    // Meanwhile a reader sees generation 1 through the torn tail.
    const mid = await contents(file);
    expect(mid.generation).toBe(1);
    expectModel(mid.entries, baseModel());
    await w.abort();
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
  });

  it("a body that fails mid-stream fails the append, and abort restores the archive", async () => {
    const file = path.join(dir, "fail.des");
    await DesWriter.write(file, {}, fillBase);
    const before = fs.readFileSync(file);
    const w = await DesWriter.append(file);
    await w.add("ok", new Uint8Array(2 << 20));
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(3 << 20);
      throw new Error("disk on fire");
    }
    await expect(w.add("broken", broken())).rejects.toMatchObject({ code: "DES_IO" });
    await expect(w.close()).rejects.toMatchObject({ code: "DES_IO" });
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
  });

  it("a second appender fails fast with DesLockedError, and succeeds once the first is done", async () => {
    const file = path.join(dir, "lock.des");
    await DesWriter.write(file, {}, fillBase);
    const first = await DesWriter.append(file);
    await first.add("one", new Uint8Array([1]));
    const t0 = performance.now();
    const err = await DesWriter.append(file).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(err).toBeInstanceOf(DesLockedError);
    expect((err as DesLockedError).code).toBe("DES_LOCKED");
    expect((err as DesLockedError).holder?.pid).toBe(process.pid);
    expect((err as Error).message).toContain(String(process.pid));
    await first.close();
    const second = await DesWriter.append(file);
    await second.add("two", new Uint8Array([2]));
    expect((await second.close()).generation).toBe(3);
    const got = await contents(file);
    expect(got.generation).toBe(3);
    expect(got.entries.size).toBe(62);
  });

  it("a lock from another host is never broken; recoverArchive respects the lock too", async () => {
    const file = path.join(dir, "foreign.des");
    await DesWriter.write(file, {}, fillBase);
    fs.writeFileSync(
      `${file}.des-lock`,
      JSON.stringify({ pid: 1, host: "some-other-host", since: "2026-01-01T00:00:00.000Z" }),
    );
    const err = await DesWriter.append(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DesLockedError);
    expect((err as DesLockedError).holder).toMatchObject({ host: "some-other-host", pid: 1 });
    await expect(recoverArchive(file)).rejects.toBeInstanceOf(DesLockedError);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(true);
    fs.rmSync(`${file}.des-lock`);
    expect(await recoverArchive(file)).toBe("clean");
  });

  it("an append with no changes writes nothing", async () => {
    const file = path.join(dir, "noop.des");
    await DesWriter.write(file, {}, fillBase);
    const before = fs.readFileSync(file);
    const w = await DesWriter.append(file);
    const report = await w.close();
    expect(report).toMatchObject({
      added: 0,
      deleted: 0,
      bytesWritten: 0,
      generation: 1,
      entries: 60,
      reclaimableBytes: 0,
    });
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
  });
});

describe("append recovery trusts footers, not the pending length alone", () => {
  const dir = tempDir("des-append-pending-");

  /** Writes `p` as the header's pending_length (u56 at offset 9). */
  function setPending(file: string, p: number): void {
    const fd = fs.openSync(file, "r+");
    try {
      const b = Buffer.alloc(7);
      b.writeUIntLE(p, 0, 6);
      fs.writeSync(fd, b, 0, 7, 9);
    } finally {
      fs.closeSync(fd);
    }
  }

  it("a damaged pending length beside a valid footer is cleared, never used to cut the file", async () => {
    for (const p of [5, 200, 3000]) {
      const file = path.join(dir, `garbage-${p}.des`);
      await DesWriter.write(file, {}, fillBase);
      const size = fs.statSync(file).size;
      setPending(file, p);
      expect(await recoverArchive(file)).toBe("committed");
      expect(fs.statSync(file).size).toBe(size);
      setPending(file, p);
      const w = await DesWriter.append(file);
      await w.add("after", new Uint8Array([7]));
      expect((await w.close()).generation).toBe(2);
      const got = await contents(file);
      expect(got.entries.size).toBe(61);
      expectModel(new Map([...got.entries].filter(([k]) => k !== "after")), baseModel());
    }
  });

  it("a torn tail with a pending length that names no generation is refused, and the file is left as it is", async () => {
    const file = path.join(dir, "torn-garbage.des");
    await DesWriter.write(file, {}, fillBase);
    fs.appendFileSync(file, Buffer.alloc(500, 0xab)); // a torn tail
    setPending(file, 1000); // not the end of any generation
    const before = fs.readFileSync(file);
    const err = await recoverArchive(file).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DES_FORMAT" });
    expect((err as Error).message).toContain("nothing was changed");
    await expect(DesWriter.append(file)).rejects.toMatchObject({ code: "DES_FORMAT" });
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
  });

  it("a committed generation this reader cannot decode (a newer writer's feature) is never cut off", async () => {
    const file = path.join(dir, "newer.des");
    await DesWriter.write(file, {}, fillBase);
    const genOne = fs.statSync(file).size;
    const w = await DesWriter.append(file);
    await w.add("later", new Uint8Array([9]));
    await w.close();
    // Generation 2's footer, re-encoded as a writer with a feature unknown here would write it;
    // its pending length left set (clearing it is not synced, so a power loss can leave it).
    const bytes = fs.readFileSync(file);
    const at = bytes.length - V2_FOOTER_SIZE;
    const footer = decodeV2Footer(bytes.subarray(at), bytes.length);
    fs.writeFileSync(
      file,
      Buffer.concat([bytes.subarray(0, at), encodeV2Footer({ ...footer, requiredFeatures: 1 << 30 })]),
    );
    setPending(file, genOne);
    const before = fs.readFileSync(file);
    await expect(recoverArchive(file)).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
    await expect(DesWriter.append(file)).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
  });

  it("recoverArchive of a file that is not there is DES_IO, and leaves no lock", async () => {
    const file = path.join(dir, "missing.des");
    await expect(recoverArchive(file)).rejects.toMatchObject({ code: "DES_IO" });
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
  });

  it("two paths to one archive through a symbolic link take one lock", async () => {
    const file = path.join(dir, "real.des");
    const link = path.join(dir, "link.des");
    await DesWriter.write(file, {}, fillBase);
    fs.symlinkSync(file, link);
    const first = await DesWriter.append(link);
    await first.add("one", new Uint8Array([1]));
    await expect(DesWriter.append(file)).rejects.toBeInstanceOf(DesLockedError);
    await expect(recoverArchive(file)).rejects.toBeInstanceOf(DesLockedError);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(true);
    expect(fs.existsSync(`${link}.des-lock`)).toBe(false);
    await first.close();
    const got = await contents(file);
    expect(got.generation).toBe(2);
    expect(got.entries.size).toBe(61);
  });
});
