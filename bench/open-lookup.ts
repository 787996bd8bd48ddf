/**
 * Cold lookups in a 1,000,000-entry archive: write it (timed), then, in a
 * fresh process per sample, open it and `stat` + `get` one random name,
 * reporting the time and the bytes the reader asked of its source.
 *
 * Run directly, this file is the child:
 *   node --import tsx bench/open-lookup.ts --child <archive> <name>...
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { rng } from "./lib.js";
import { DesReader, DesWriter } from "../src/index.js";
import { DATA_DIR, MB, median, runTsChild } from "./tree.js";

const ENTRIES = 1_000_000;
const SEED = 1234;
const SAMPLES = 20;

const DIRS = ["src", "lib", "assets", "docs", "test", "build", "static", "vendor"];
const WORDS = [
  "user",
  "order",
  "image",
  "thumb",
  "report",
  "index",
  "config",
  "shard",
  "tile",
  "item",
  "event",
  "page",
];
const EXTS = ["json", "png", "txt", "bin", "js", "md"];

/** Seeded names like `proj0421/assets/thumb/item-0123456.png` (30-40 bytes) and bodies of 16-64 bytes. */
function workload(): { names: string[]; bodies: Uint8Array[] } {
  const r = rng(SEED);
  const pool = new Uint8Array(1 << 16);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(r() * 256);
  const names: string[] = new Array(ENTRIES);
  const bodies: Uint8Array[] = new Array(ENTRIES);
  for (let i = 0; i < ENTRIES; i++) {
    const dir = DIRS[Math.floor(r() * DIRS.length)]!;
    const word = WORDS[Math.floor(r() * WORDS.length)]!;
    const ext = EXTS[Math.floor(r() * EXTS.length)]!;
    names[i] =
      `proj${String(Math.floor(i / 1000)).padStart(4, "0")}/${dir}/${word}/item-${String(i).padStart(7, "0")}.${ext}`;
    const len = 16 + Math.floor(r() * 49);
    const at = Math.floor(r() * (pool.length - len));
    bodies[i] = pool.subarray(at, at + len);
  }
  return { names, bodies };
}

interface ChildResult {
  /** One per name: open + stat + get, ms, and the reader's I/O. */
  samples: { name: string; ms: number; openMs: number; bytes: number; requests: number; size: number; hex: string }[];
}

async function child(archive: string, names: string[]): Promise<void> {
  const samples: ChildResult["samples"] = [];
  for (const name of names) {
    const t0 = performance.now();
    const reader = await DesReader.open(archive);
    const t1 = performance.now();
    const st = await reader.stat(name);
    const body = await reader.get(name);
    const t2 = performance.now();
    const io = reader.ioStats;
    await reader.close();
    samples.push({
      name,
      ms: t2 - t0,
      openMs: t1 - t0,
      bytes: io.bytes,
      requests: io.requests,
      size: st.size,
      hex: Buffer.from(body).toString("hex"),
    });
  }
  const out: ChildResult = { samples };
  process.stdout.write(JSON.stringify(out) + "\n");
}

export const benchmark: Benchmark = {
  name: "open-lookup",
  async run(): Promise<BenchReport> {
    const log = (s: string): void => void process.stderr.write(`  [open-lookup] ${s}\n`);
    fs.mkdirSync(DATA_DIR, { recursive: true });
    const archive = path.join(DATA_DIR, "open-lookup-1m.des");
    fs.rmSync(archive, { force: true });
    const { names, bodies } = workload();

    log(`writing ${ENTRIES.toLocaleString("en-US")} entries`);
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    const w = await DesWriter.create(archive);
    for (let i = 0; i < ENTRIES; i++) await w.add(names[i]!, bodies[i]!);
    const stats = await w.close();
    const writeMs = performance.now() - t0;

    try {
      const r = rng(SEED + 1);
      const picks = Array.from({ length: SAMPLES }, () => Math.floor(r() * ENTRIES));
      log(`${SAMPLES} cold opens, one fresh process each`);
      const cold: ChildResult["samples"] = [];
      for (const i of picks) {
        const res = runTsChild<ChildResult>("open-lookup.ts", ["--child", archive, names[i]!]).result;
        cold.push(res.samples[0]!);
      }
      log(`${SAMPLES} fresh readers in one warm process`);
      const warm = runTsChild<ChildResult>("open-lookup.ts", [
        "--child",
        archive,
        ...picks.map((i) => names[i]!),
      ]).result.samples.slice(1);
      // Every answer must be the right body.
      [...cold, ...warm].forEach((s) => {
        const i = names.indexOf(s.name);
        if (i < 0 || Buffer.from(bodies[i]!).toString("hex") !== s.hex) throw new Error(`wrong body for ${s.name}`);
      });

      const coldMs = median(cold.map((s) => s.ms));
      const coldBytes = median(cold.map((s) => s.bytes));
      const maxBytes = Math.max(...cold.map((s) => s.bytes));
      const rows: BenchRow[] = [
        {
          metric: "cold open + stat + get, fresh process (median)",
          value: round2(coldMs),
          unit: "ms",
          target: "< 50 ms",
          pass: coldMs < 50,
        },
        {
          metric: "bytes read for it (reader ioStats, median)",
          value: Math.round((coldBytes / 1024) * 10) / 10,
          unit: "KiB",
          target: "< 200 KiB",
          pass: coldBytes < 200 * 1024,
        },
        { metric: "bytes read, worst of the samples", value: Math.round((maxBytes / 1024) * 10) / 10, unit: "KiB" },
        { metric: "reads issued (median)", value: median(cold.map((s) => s.requests)), unit: "requests" },
        {
          metric: "of which open (tail read + root), median",
          value: round2(median(cold.map((s) => s.openMs))),
          unit: "ms",
        },
        {
          metric: "info: fresh DesReader in a warm process, open + stat + get (median)",
          value: round2(median(warm.map((s) => s.ms))),
          unit: "ms",
        },
        {
          metric: `writer: ${ENTRIES.toLocaleString("en-US")} sequential awaited adds + close`,
          value: Math.round(writeMs),
          unit: "ms",
        },
        { metric: "writer throughput", value: Math.round(ENTRIES / (writeMs / 1000)), unit: "entries/s" },
        { metric: "archive size", value: Math.round((stats.archiveBytes / MB) * 10) / 10, unit: "MB" },
        { metric: "index size (pages + root)", value: Math.round((stats.indexBytes / MB) * 10) / 10, unit: "MB" },
        { metric: "index pages", value: stats.indexPages, unit: "pages" },
      ];
      return {
        name: "open-lookup",
        workload: `${ENTRIES.toLocaleString("en-US")} entries, names ${Math.min(...names.slice(0, 1000).map((n) => n.length))}-${Math.max(...names.slice(0, 1000).map((n) => n.length))} bytes like \`${names[0]}\`, bodies 16-64 bytes (seed ${SEED}), v2; ${SAMPLES} random names`,
        rows,
        notes: [
          "Timed inside the child from DesReader.open to the body in hand (module import excluded; the first open of a process includes instantiating the xxhash WebAssembly module). The OS page cache is warm (the archive was just written): this measures our work and I/O volume, not disk latency.",
          `cold samples (ms): ${cold.map((s) => s.ms.toFixed(1)).join(", ")}`,
        ],
      };
    } finally {
      fs.rmSync(archive, { force: true });
    }
  },
};

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (
  process.argv[1] &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) &&
  process.argv[2] === "--child"
) {
  child(process.argv[3]!, process.argv.slice(4)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
