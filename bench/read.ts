/**
 * Reading entries back from the packed 100,000-file archive: `get` one at a
 * time, `get` from 8 concurrent callers, and `getMany` in batches of 1,000,
 * against raw `fs.readSync` of exactly the same byte ranges in the same order
 * from a plain descriptor (no parsing, no checksums).
 */
import fs from "node:fs";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { rng } from "./lib.js";
import { DesReader, FileSource, packDirectory } from "../src/index.js";
import { DEFAULT_TREE, MB, archivePath, ensureTree, treeId } from "./tree.js";

const SEED = 7;
const BATCH = 1000;
const CALLERS = 8;
/** Timed runs per case (the best is kept): getMany and raw are cheap, the get loops are not. */
const REPEATS = { get: 2, getMany: 3, raw: 3 };

interface Range {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** The packed tree, from pack.ts when present, else packed here. */
async function ensureArchive(log: (s: string) => void): Promise<string> {
  const tree = ensureTree(DEFAULT_TREE, log);
  const file = archivePath(DEFAULT_TREE);
  const side = `${file}.json`;
  try {
    const meta = JSON.parse(fs.readFileSync(side, "utf8")) as { tree: string; bytes: number };
    if (meta.tree === treeId(DEFAULT_TREE) && fs.statSync(file).size === meta.bytes) return file;
  } catch {
    // missing or stale: pack below
  }
  log("packing the tree (no archive from pack.ts)");
  fs.rmSync(file, { force: true });
  const st = await packDirectory(tree.root, file);
  fs.writeFileSync(side, JSON.stringify({ tree: treeId(DEFAULT_TREE), bytes: st.archiveBytes }));
  return file;
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const r = rng(seed);
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Reads the whole file once so every measurement starts from a warm page cache. */
function warm(file: string): void {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.allocUnsafe(8 << 20);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    pos += n;
  }
  fs.closeSync(fd);
}

/** The baseline: one pread per entry into a fresh buffer (the bytes a caller would get), same order. */
function rawReads(file: string, ranges: readonly Range[]): number {
  const fd = fs.openSync(file, "r");
  let bytes = 0;
  try {
    for (const r of ranges) {
      const buf = Buffer.allocUnsafe(r.size);
      bytes += fs.readSync(fd, buf, 0, r.size, r.offset);
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

async function getSequential(reader: DesReader, names: readonly string[], verify: boolean): Promise<number> {
  let bytes = 0;
  for (const n of names) bytes += (await reader.get(n, { verify })).length;
  return bytes;
}

async function getConcurrent(reader: DesReader, names: readonly string[], verify: boolean): Promise<number> {
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < names.length) {
        const n = names[next++]!;
        const body = await reader.get(n, { verify });
        bytes += body.length; // after the await: `bytes += await x` would read a stale total
      }
    }),
  );
  return bytes;
}

async function getManyBatches(reader: DesReader, names: readonly string[], verify: boolean): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < names.length; i += BATCH) {
    const got = await reader.getMany(names.slice(i, i + BATCH), { verify });
    for (const b of got.values()) bytes += b.length;
  }
  return bytes;
}

/** Best of `repeats` timings (ms), checking the byte count every time. */
async function best(fn: () => number | Promise<number>, expectBytes: number, repeats: number): Promise<number> {
  let bestMs = Infinity;
  for (let i = 0; i < repeats; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    const bytes = await fn();
    const ms = performance.now() - t0;
    if (bytes !== expectBytes) throw new Error(`read ${bytes} bytes, expected ${expectBytes}`);
    bestMs = Math.min(bestMs, ms);
  }
  return bestMs;
}

export const benchmark: Benchmark = {
  name: "read",
  async run(): Promise<BenchReport> {
    const log = (s: string): void => void process.stderr.write(`  [read] ${s}\n`);
    const file = await ensureArchive(log);
    const tree = ensureTree(DEFAULT_TREE, log);
    const names = shuffled(
      tree.files.map((f) => f.rel),
      SEED,
    );

    const reader = await DesReader.open(file);
    const syncReader = await DesReader.open(await FileSource.open(file, { syncReads: true }));
    try {
      // The byte ranges, from the index (untimed), and a content check of a sample.
      const ranges: Range[] = [];
      for (let i = 0; i < names.length; i += BATCH) {
        const stats = await Promise.all(names.slice(i, i + BATCH).map((n) => reader.stat(n)));
        for (const s of stats) ranges.push({ name: s.name, offset: s.offset, size: s.storedSize });
      }
      const totalBytes = ranges.reduce((s, r) => s + r.size, 0);
      if (totalBytes !== tree.totalBytes)
        throw new Error(`index says ${totalBytes} bytes, the tree has ${tree.totalBytes}`);
      const sample = await reader.getMany(names.slice(0, 500));
      for (const [n, b] of sample) {
        const head = Buffer.from(`${n}\n`);
        if (
          !Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, head.length)).equals(
            head.subarray(0, Math.min(b.length, head.length)),
          )
        ) {
          throw new Error(`wrong bytes for ${n}`);
        }
      }
      warm(file);

      log("raw fs.readSync");
      const rawMs = await best(() => rawReads(file, ranges), totalBytes, REPEATS.raw);
      const cases: { key: string; label: string; verify: boolean; run: () => Promise<number> }[] = [];
      const modes: [string, DesReader, boolean[]][] = [
        ["", reader, [true, false]],
        [" (syncReads)", syncReader, [true]],
      ];
      for (const [mode, r, verifies] of modes) {
        for (const verify of verifies) {
          cases.push({
            key: `seq-${verify}${mode}`,
            label: `get, sequential awaits${mode}`,
            verify,
            run: () => getSequential(r, names, verify),
          });
          cases.push({
            key: `conc-${verify}${mode}`,
            label: `get, ${CALLERS} concurrent callers${mode}`,
            verify,
            run: () => getConcurrent(r, names, verify),
          });
          cases.push({
            key: `many-${verify}${mode}`,
            label: `getMany, batches of ${BATCH.toLocaleString("en-US")}${mode}`,
            verify,
            run: () => getManyBatches(r, names, verify),
          });
        }
      }
      const ms = new Map<string, number>();
      for (const c of cases) {
        log(`${c.label}, verify ${c.verify}`);
        ms.set(c.key, await best(c.run, totalBytes, c.key.startsWith("many") ? REPEATS.getMany : REPEATS.get));
      }
      // The baseline again at the end; the better of the two is used (the stricter ratio).
      const rawMs2 = await best(() => rawReads(file, ranges), totalBytes, REPEATS.raw);
      const baseMs = Math.min(rawMs, rawMs2);

      const n = names.length;
      const eps = (t: number): number => Math.round(n / (t / 1000));
      const mbs = (t: number): number => Math.round((totalBytes / MB / (t / 1000)) * 10) / 10;
      const rawEps = eps(baseMs);
      const rows: BenchRow[] = [];
      for (const c of cases) {
        const t = ms.get(c.key)!;
        const ratio = Math.round((baseMs / t) * 1000) / 1000;
        // The target applies to getMany with checksums on; both read modes are held to it.
        const headline = c.key.startsWith("many-true");
        rows.push({
          metric: `${c.label}${c.verify ? "" : " (verify: false, info)"}`,
          value: eps(t),
          unit: "entries/s",
          baseline: "raw fs.readSync, same ranges",
          baselineValue: rawEps,
          ratio,
          ...(headline ? { target: ">= 0.5 of raw", pass: ratio >= 0.5 } : {}),
        });
        if (c.verify)
          rows.push({
            metric: `${c.label}, MB/s`,
            value: mbs(t),
            unit: "MB/s",
            baseline: "raw fs.readSync",
            baselineValue: mbs(baseMs),
            ratio,
          });
      }
      return {
        name: "read",
        workload: `${n.toLocaleString("en-US")} entries of ${DEFAULT_TREE.minSize}-${DEFAULT_TREE.maxSize} bytes (${(totalBytes / MB).toFixed(0)} MB) from the packed tree, seeded random order (seed ${SEED}), one FileSource reader, page cache warm; best of ${REPEATS.getMany} runs for getMany and raw, ${REPEATS.get} for the get loops`,
        rows,
        notes: [
          `raw baseline: ${rawMs.toFixed(0)} ms before, ${rawMs2.toFixed(0)} ms after the library runs; the faster is used. Raw reads allocate a fresh buffer per entry, as any API returning the bytes must.`,
          "Checksums (xxh64 of every body) are verified in the headline rows (the default); verify: false rows are for information.",
          "Default FileSource: never blocks the event loop (thread pool for single reads, one shared reader thread for batches). syncReads: synchronous pread on the calling thread (opt-in; blocks the event loop while the disk answers).",
        ],
      };
    } finally {
      await reader.close();
      await syncReader.close();
    }
  },
};
