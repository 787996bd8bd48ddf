/**
 * The cold path against Cotar (@cotar/core, its index built by
 * @cotar/builder), on 100,000 entries of 1-8 KiB and of 16-512 B:
 *
 * 1. open + first entry in a fresh process: local (syncReads and default)
 *    and over HTTP with 20 ms to first byte (bench/range-server.ts), wall
 *    time and bytes read;
 * 2. a cold batch of 1,000 and of 10,000 random names, local, in a fresh
 *    process: throughput against Cotar with its whole index in memory.
 *
 * Run directly, this file is the child:
 *   node --import tsx bench/cold.ts --child <json>
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { rng } from "./lib.js";
import { BENCH_DIR, median } from "./tree.js";
import { DENSE, SPARSE, ensureCotar, ensureDes } from "./workloads.js";
import type { Workload } from "./workloads.js";
import { startRangeServer } from "./range-server.js";

const OPEN_SAMPLES = 7;
const BATCH_SAMPLES = 3;
const HTTP_LATENCY_MS = 20;

type Impl = "des-sync" | "des" | "cotar-sync" | "cotar" | "des-http" | "cotar-http";

interface ChildTask {
  impl: Impl;
  /** A path, or a URL for the -http impls. */
  target: string;
  names: string[];
  /** "first": open + first entry; "batch": open, then every name, cold. */
  mode: "first" | "batch";
}

interface ChildResult {
  ms: number;
  bytes: number;
  requests: number;
  /** Checksum of the bodies (their total length), so both sides provably read the same. */
  bodyBytes: number;
  /** des: ms a second synchronous instantiation of the hash module takes (what the first open pays once). */
  hasherReadyMs?: number;
  /** des: ms the package's asynchronous xxhash loader takes in this process. */
  hasherInstantiateMs?: number;
}

// ---------------------------------------------------------------------------
// Child

/** Cotar's Source contract, implemented over a descriptor or HTTP, counting what it reads. */
interface CountingSource {
  type: string;
  url: URL;
  metadata?: { size?: number };
  head(): Promise<{ size?: number }>;
  fetch(offset: number, length?: number): Promise<ArrayBuffer>;
  requests: number;
  bytes: number;
}

function fileSource(file: string, sync: boolean): CountingSource {
  const fd = fs.openSync(file, "r");
  const size = fs.fstatSync(fd).size;
  const read = async (offset: number, length: number): Promise<ArrayBuffer> => {
    const buf = Buffer.allocUnsafe(length);
    if (sync) fs.readSync(fd, buf, 0, length, offset);
    else
      await new Promise<void>((resolve, reject) =>
        fs.read(fd, buf, 0, length, offset, (e) => (e ? reject(e) : resolve())),
      );
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + length) as ArrayBuffer;
  };
  const src: CountingSource = {
    type: "file",
    url: new URL(`file://${file}`),
    metadata: { size },
    requests: 0,
    bytes: 0,
    async head() {
      return { size };
    },
    async fetch(offset, length) {
      const start = offset < 0 ? size + offset : offset;
      const len = length ?? size - start;
      src.requests++;
      src.bytes += len;
      return read(start, len);
    },
  };
  return src;
}

function httpSource(url: string): CountingSource {
  const src: CountingSource = {
    type: "http",
    url: new URL(url),
    requests: 0,
    bytes: 0,
    async head() {
      src.requests++;
      const res = await fetch(url, { method: "HEAD" });
      const size = Number(res.headers.get("content-length"));
      src.metadata = { size };
      return { size };
    },
    async fetch(offset, length) {
      src.requests++;
      const range = offset < 0 ? `bytes=${offset}` : `bytes=${offset}-${offset + (length ?? 1) - 1}`;
      const res = await fetch(url, { headers: { range } });
      const ab = await res.arrayBuffer();
      src.bytes += ab.byteLength;
      return ab;
    },
  };
  return src;
}

/** A whole file in memory as a Cotar source (its index, for the batch case). */
function memorySource(bytes: Uint8Array): CountingSource {
  const size = bytes.length;
  return {
    type: "memory",
    url: new URL("memory://index"),
    metadata: { size },
    requests: 0,
    bytes: 0,
    async head() {
      return { size };
    },
    async fetch(offset, length) {
      const start = offset < 0 ? size + offset : offset;
      const len = length ?? size - start;
      return bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + len) as ArrayBuffer;
    },
  };
}

async function runCotar(task: ChildTask): Promise<ChildResult> {
  const { Cotar, CotarIndex, IndexSize, IndexV2RecordSize } = await import("@cotar/core");
  type CotarSource = Parameters<typeof Cotar.fromTar>[0];
  const remote = task.impl === "cotar-http";
  // Timed from before the file is opened: DesReader.open(path) opens and stats the file too.
  const t0 = performance.now();
  const src = remote ? httpSource(task.target) : fileSource(task.target, task.impl === "cotar-sync");
  let bodyBytes = 0;
  let cotar: InstanceType<typeof Cotar>;
  if (task.mode === "batch") {
    // Cotar at its best for a batch: the whole index read once into memory.
    const meta = await CotarIndex.getMetadata(src as unknown as CotarSource, 0, false);
    const size = (await src.head()).size!;
    const indexBytes = meta.count * IndexV2RecordSize + IndexSize;
    const index = new Uint8Array(await src.fetch(size - indexBytes, indexBytes));
    const inMemory = new CotarIndex(memorySource(index) as unknown as CotarSource, meta, 0);
    cotar = new Cotar(src as unknown as CotarSource, inMemory);
  } else {
    cotar = await Cotar.fromTar(src as unknown as CotarSource);
  }
  for (const name of task.names) {
    const body = await cotar.get(name);
    if (!body) throw new Error(`cotar: ${name} not found`);
    bodyBytes += body.byteLength;
  }
  return { ms: performance.now() - t0, bytes: src.bytes, requests: src.requests, bodyBytes };
}

async function runDes(task: ChildTask): Promise<ChildResult> {
  const { DesReader, HttpSource } = await import("../src/index.js");
  const { instantiateSync } = await import("../src/format/xxhash-sync.js");
  // The hash module is compiled on the first hash, inside the timed span (as a user's first open pays it).
  const t0 = performance.now();
  const reader =
    task.impl === "des-http"
      ? await DesReader.open(new HttpSource(task.target))
      : await DesReader.open(task.target, { syncReads: task.impl === "des-sync" });
  let bodyBytes = 0;
  if (task.mode === "first") {
    bodyBytes = (await reader.get(task.names[0]!)).length;
  } else {
    const got = await reader.getMany(task.names);
    for (const b of got.values()) bodyBytes += b.length;
  }
  const ms = performance.now() - t0;
  const io = reader.ioStats;
  await reader.close();
  // What that compile costs: a second synchronous instantiation in the same process.
  const t1 = performance.now();
  instantiateSync();
  const hasherReadyMs = performance.now() - t1;
  const { default: xxhash } = await import("xxhash-wasm");
  const t2 = performance.now();
  await xxhash();
  const hasherInstantiateMs = performance.now() - t2;
  return { ms, bytes: io.bytes, requests: io.requests, bodyBytes, hasherReadyMs, hasherInstantiateMs };
}

async function child(task: ChildTask): Promise<void> {
  const r = task.impl.startsWith("des") ? await runDes(task) : await runCotar(task);
  process.stdout.write(JSON.stringify(r) + "\n");
}

// ---------------------------------------------------------------------------
// Parent

/** A fresh child process (asynchronous: the range server answers from this process meanwhile). */
function runChild(task: ChildTask): Promise<ChildResult> {
  const arg = path.join(BENCH_DIR, ".data", `cold-task-${process.pid}.json`);
  fs.writeFileSync(arg, JSON.stringify(task));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", arg], {
      cwd: path.dirname(BENCH_DIR),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => {
      if (code !== 0) return reject(new Error(`cold child ${task.impl} failed (${code}): ${err}`));
      const lines = out.trim().split("\n");
      resolve(JSON.parse(lines[lines.length - 1]!) as ChildResult);
    });
  });
}

function pick(w: Workload, count: number, seed: number): string[] {
  const r = rng(seed);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(r() * w.files.length));
  return [...chosen].map((i) => w.files[i]!.rel);
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

async function coldCases(
  label: string,
  w: Workload,
  cotarFile: string,
  rows: BenchRow[],
  notes: string[],
  log: (s: string) => void,
): Promise<void> {
  const server = await startRangeServer(w.des, { firstByteMs: HTTP_LATENCY_MS, bytesPerMs: 1e6 });
  const cotarServer = await startRangeServer(cotarFile, { firstByteMs: HTTP_LATENCY_MS, bytesPerMs: 1e6 });
  try {
    const names = pick(w, OPEN_SAMPLES, 99);
    const first = async (impl: Impl, target: string): Promise<ChildResult[]> => {
      const out: ChildResult[] = [];
      for (const n of names) out.push(await runChild({ impl, target, names: [n], mode: "first" }));
      return out;
    };
    log(`${label}: open + first entry, ${OPEN_SAMPLES} fresh processes per case`);
    const res = {
      desSync: await first("des-sync", w.des),
      des: await first("des", w.des),
      cotarSync: await first("cotar-sync", cotarFile),
      cotar: await first("cotar", cotarFile),
      desHttp: await first("des-http", server.url),
      cotarHttp: await first("cotar-http", cotarServer.url),
    };
    for (let i = 0; i < names.length; i++) {
      const sizes = Object.values(res).map((rs) => rs[i]!.bodyBytes);
      if (new Set(sizes).size !== 1)
        throw new Error(`${names[i]}: bodies differ between readers (${sizes.join(", ")})`);
    }
    const entry = median(res.des.map((r) => r.bodyBytes));
    const ms = (rs: ChildResult[]): number => median(rs.map((r) => r.ms));
    const kib = (rs: ChildResult[]): number => round(median(rs.map((r) => r.bytes)) / 1024, 1);
    const cmp = (metric: string, ours: ChildResult[], theirs: ChildResult[], limit: number): void => {
      const ratio = ms(ours) / ms(theirs);
      rows.push({
        metric: `${label}: ${metric}`,
        value: round(ms(ours)),
        unit: "ms",
        baseline: "Cotar",
        baselineValue: round(ms(theirs)),
        ratio: round(ratio),
        target: `<= ${limit}x Cotar`,
        pass: ratio <= limit,
      });
    };
    cmp("open + first entry, local, syncReads (vs Cotar, sync pread)", res.desSync, res.cotarSync, 1.0);
    cmp("open + first entry, local, default (vs Cotar, fs.read)", res.des, res.cotar, 1.0);
    cmp(`open + first entry, HTTP ${HTTP_LATENCY_MS} ms/request`, res.desHttp, res.cotarHttp, 0.9);
    const localBytes = median(res.des.map((r) => r.bytes));
    rows.push({
      metric: `${label}: bytes read, open + first entry, local`,
      value: kib(res.des),
      unit: "KiB",
      baseline: "Cotar",
      baselineValue: kib(res.cotar),
      target: `<= 16 KiB + the entry (${round(entry / 1024, 1)} KiB)`,
      pass: localBytes <= 16 * 1024 + entry,
    });
    rows.push({
      metric: `${label}: reads, open + first entry, local / HTTP`,
      value: median(res.des.map((r) => r.requests)),
      unit: "reads",
      baseline: "Cotar",
      baselineValue: median(res.cotar.map((r) => r.requests)),
    });
    rows.push({
      metric: `${label}: requests over HTTP`,
      value: median(res.desHttp.map((r) => r.requests)),
      unit: "requests",
      baseline: "Cotar",
      baselineValue: median(res.cotarHttp.map((r) => r.requests)),
    });
    rows.push({
      metric: `${label}: bytes over HTTP`,
      value: kib(res.desHttp),
      unit: "KiB",
      baseline: "Cotar",
      baselineValue: kib(res.cotarHttp),
    });
    notes.push(
      `${label}: the hash WebAssembly module is compiled synchronously on the first hash, inside the timed open (nothing at import); a second synchronous instantiation takes ${round(median(res.des.map((r) => r.hasherReadyMs!)))} ms in the same process, the package's asynchronous loader ${round(median(res.des.map((r) => r.hasherInstantiateMs!)))} ms.`,
    );

    for (const count of [1000, 10_000]) {
      log(`${label}: cold batch of ${count}, ${BATCH_SAMPLES} fresh processes per case`);
      const batchNames = pick(w, count, 7 + count);
      const runs = async (impl: Impl, target: string): Promise<ChildResult[]> => {
        const out: ChildResult[] = [];
        for (let s = 0; s < BATCH_SAMPLES; s++)
          out.push(await runChild({ impl, target, names: batchNames, mode: "batch" }));
        return out;
      };
      const ds = await runs("des-sync", w.des);
      const dd = await runs("des", w.des);
      const cs = await runs("cotar-sync", cotarFile);
      if (ds[0]!.bodyBytes !== cs[0]!.bodyBytes || dd[0]!.bodyBytes !== cs[0]!.bodyBytes)
        throw new Error("batch bodies differ between readers");
      const tput = (rs: ChildResult[]): number => Math.round(count / (median(rs.map((r) => r.ms)) / 1000));
      const limit = count === 1000 ? 1.5 : 3;
      for (const [what, rs] of [
        ["syncReads", ds],
        ["default", dd],
      ] as const) {
        const ratio = tput(rs) / tput(cs);
        rows.push({
          metric: `${label}: cold getMany of ${count.toLocaleString("en-US")} random names, local, ${what}`,
          value: tput(rs),
          unit: "entries/s",
          baseline: "Cotar, index in memory, sync pread",
          baselineValue: tput(cs),
          ratio: round(ratio),
          target: `>= ${limit}x Cotar`,
          pass: ratio >= limit,
        });
      }
    }
  } finally {
    await server.close();
    await cotarServer.close();
  }
}

export const benchmark: Benchmark = {
  name: "cold",
  async run(): Promise<BenchReport> {
    const log = (s: string): void => void process.stderr.write(`  [cold] ${s}\n`);
    const rows: BenchRow[] = [];
    const notes: string[] = [];
    for (const [label, params] of [
      ["1-8 KiB", SPARSE],
      ["16-512 B", DENSE],
    ] as const) {
      const w = await ensureDes(params, log);
      const cotar = await ensureCotar(params, log);
      await coldCases(label, w, cotar, rows, notes, log);
    }
    return {
      name: "cold",
      workload: `100,000 entries of 1-8 KiB and of 16-512 B (seeded names like \`assets/d000/e00/f0000000.png\`); Cotar ${cotarVersion()} over the same files (tar + @cotar/builder index); fresh process per sample (${OPEN_SAMPLES} for open, ${BATCH_SAMPLES} for batches), page cache warm; HTTP through bench/range-server.ts at ${HTTP_LATENCY_MS} ms to first byte`,
      rows,
      notes: [
        "Times are from the reader's open call to the last body in hand, inside the child (module import excluded for both); both include opening the file (open + fstat: DesReader.open takes a path, Cotar's source is opened inside the timed span).",
        "Cotar's batch baseline reads its whole index into memory first (included in its time) and then each entry with a synchronous pread: its fastest configuration.",
        ...notes,
      ],
    };
  },
};

function cotarVersion(): string {
  try {
    return (
      JSON.parse(
        fs.readFileSync(path.join(path.dirname(BENCH_DIR), "node_modules/@cotar/core/package.json"), "utf8"),
      ) as { version: string }
    ).version;
  } catch {
    return "?";
  }
}

if (
  process.argv[1] &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) &&
  process.argv[2] === "--child"
) {
  const task = JSON.parse(fs.readFileSync(process.argv[3]!, "utf8")) as ChildTask;
  child(task).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
