/**
 * Index caches: open + one `get` of a 1,000,000-entry v2 archive on moto,
 * through a loopback proxy that adds 20 ms to every request, in four states:
 * cold (no cache); memory-warm (same process, a new reader over the
 * MemoryIndexCache the cold open filled); /tmp-warm (a new process over the
 * FsIndexCache folder); Redis-warm (a new process over Redis). Requests and
 * bytes are counted by the proxy (what S3 would bill); wall time is open +
 * get inside the process that reads.
 *
 * Also the Lambda example's bundle (examples/lambda, esbuild, minified)
 * against a bundle of @aws-sdk/client-s3 alone: size of the JavaScript
 * loaded at start, and cold import time (median of fresh processes).
 *
 * Starts and stops its own moto, proxy and redis-server. Standalone:
 * `npx tsx bench/cache.ts` prints the report as JSON.
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { build } from "esbuild";
import type { Metafile } from "esbuild";
import { FsIndexCache } from "../src/cache/fs.js";
import { MemoryIndexCache } from "../src/cache/memory.js";
import { RedisIndexCache } from "../src/cache/redis.js";
import { TieredIndexCache } from "../src/cache/tiered.js";
import { S3DesReader, createS3Writer } from "../src/s3/index.js";
import { startFaultProxy } from "../test/helpers/fault-proxy.js";
import { ensureBucket, s3Config, startMoto } from "../test/helpers/moto.js";
import { startRedis } from "../test/helpers/redis.js";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import type { CacheChildResult } from "./cache-child.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ENTRIES = 1_000_000;
const RTT_MS = 20;
const BUCKET = "des-bench-cache";
const KEY = "bench/million.des";
const IMPORT_RUNS = 9;
const nameOf = (i: number): string => `m${String(i).padStart(7, "0")}`;
const PICK = nameOf(654_321);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Bytes of the JavaScript a bundle loads at start: the entry and its static imports, not lazy chunks. */
function eagerBytes(meta: Metafile, entryOut: string): number {
  return [...eagerBytesSet(meta, entryOut)].reduce((a, o) => a + (meta.outputs[o]?.bytes ?? 0), 0);
}

async function bundleBaseline(outdir: string): Promise<Metafile> {
  const r = await build({
    // What any S3 handler has at module scope: the SDK and a client (the example creates one too).
    stdin: {
      contents: `import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";\nexport const client = new S3Client({});\nexport { GetObjectCommand };`,
      resolveDir: ROOT,
      sourcefile: "base.mjs",
      loader: "js",
    },
    outdir,
    entryNames: "base",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    minify: true,
    outExtension: { ".js": ".mjs" },
    // The same banner as the example's build (CommonJS parts of the SDK call require).
    banner: {
      js: "import { createRequire as __desCreateRequire } from 'node:module'; const require = __desCreateRequire(import.meta.url);",
    },
    metafile: true,
    logLevel: "warning",
  });
  return r.metafile;
}

/**
 * `await import(file)` in fresh processes: wall time and CPU time (user +
 * system) of the import, ms. On a shared machine the wall time mostly
 * measures the wait for a core; the CPU time is the cost itself.
 */
function importMs(file: string): { wall: number[]; cpu: number[] } {
  const code = `const c = process.cpuUsage(); const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); const u = process.cpuUsage(c); process.stdout.write(JSON.stringify([performance.now() - t, (u.user + u.system) / 1000]));`;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < IMPORT_RUNS; i++) {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", AWS_REGION: "us-east-1" },
    });
    if (r.status !== 0) throw new Error(`importing ${file} failed: ${r.stderr.slice(-500)}`);
    const [w, c] = JSON.parse(r.stdout) as [number, number];
    wall.push(w);
    cpu.push(c);
  }
  return { wall, cpu };
}

const execFileAsync = promisify(execFile);

/** A new process that opens and reads (asynchronously: the proxy it talks to runs in this process). */
async function child(args: string[]): Promise<CacheChildResult> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "bench/cache-child.ts"), ...args],
    { cwd: ROOT, encoding: "utf8" },
  );
  return JSON.parse(stdout.trim().split("\n").pop()!) as CacheChildResult;
}

export const benchmark: Benchmark = {
  name: "cache",
  async run(): Promise<BenchReport> {
    const rows: BenchRow[] = [];
    const notes: string[] = [];
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "des-bench-cache-"));
    const moto = await startMoto();
    const redis = await startRedis();
    const proxy = await startFaultProxy(moto.endpoint, { delayMs: RTT_MS });
    const direct = new S3Client(s3Config(moto.endpoint));
    const client = new S3Client(s3Config(proxy.endpoint));
    try {
      await ensureBucket(direct, BUCKET);
      const w = await createS3Writer({ client: direct, bucket: BUCKET, key: KEY, overwrite: true });
      const body = new Uint8Array(8);
      for (let i = 0; i < ENTRIES; i++) {
        new DataView(body.buffer).setFloat64(0, i, true);
        await w.add(nameOf(i), body.slice());
      }
      await w.close();

      const dir = path.join(work, "tmp-cache");
      const prefix = `bench-${process.pid}:`;
      const memory = new MemoryIndexCache({ maxBytes: 256 << 20 });
      const redisCache = new RedisIndexCache({ url: redis.url, keyPrefix: prefix, timeoutMs: 2000 });
      const tiered = new TieredIndexCache([memory, new FsIndexCache({ dir, maxBytes: 1 << 30 }), redisCache]);

      const measure = async (
        label: string,
        fn: () => Promise<{ ms: number; requests?: number; bytes?: number; extra?: string }>,
      ): Promise<{ requests: number; bytes: number; ms: number }> => {
        proxy.reset();
        const r = await fn();
        const requests = proxy.stats.requests;
        const bytes = proxy.stats.bytesOut;
        const warm = !label.startsWith("cold");
        rows.push({
          metric: `${label}: S3 requests (open + get)`,
          value: requests,
          unit: "requests",
          ...(warm ? { target: "1 (0 to open, 1 to get)", pass: requests === 1 } : {}),
        });
        rows.push({ metric: `${label}: S3 bytes`, value: bytes, unit: "B" });
        rows.push({ metric: `${label}: wall, open + get`, value: r.ms, unit: "ms" });
        if (r.extra) notes.push(`${label}: ${r.extra}`);
        return { requests, bytes, ms: r.ms };
      };

      const openGet = async (cache: TieredIndexCache | MemoryIndexCache | undefined): Promise<{ ms: number }> => {
        const t0 = performance.now();
        const reader = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, cache ? { cache } : {});
        const got = await reader.get(PICK);
        const ms = performance.now() - t0;
        if (new DataView(got.buffer, got.byteOffset).getFloat64(0, true) !== 654_321) throw new Error("wrong bytes");
        await reader.close();
        return { ms };
      };

      const uncached = await measure("cold, no cache", () => openGet(undefined));
      await measure("cold, filling memory + /tmp + Redis", () => openGet(tiered));
      const memWarm = await measure("memory-warm", () => openGet(memory));
      const coldChild = await measure("cold, new process, no cache", async () => {
        const r = await child(["none", proxy.endpoint, BUCKET, KEY, PICK, "-"]);
        return { ms: r.openMs + r.getMs, extra: `open ${r.openMs.toFixed(1)} ms, get ${r.getMs.toFixed(1)} ms` };
      });
      const fsWarm = await measure("/tmp-warm, new process", async () => {
        const r = await child(["fs", proxy.endpoint, BUCKET, KEY, PICK, dir]);
        return { ms: r.openMs + r.getMs, extra: `open ${r.openMs.toFixed(1)} ms, get ${r.getMs.toFixed(1)} ms` };
      });
      let roundTrips = 0;
      const redisWarm = await measure("Redis-warm, new process", async () => {
        const r = await child(["redis", proxy.endpoint, BUCKET, KEY, PICK, redis.url, prefix]);
        roundTrips = r.redisRoundTrips;
        return {
          ms: r.openMs + r.getMs,
          extra: `open ${r.openMs.toFixed(1)} ms, get ${r.getMs.toFixed(1)} ms, ${r.redisRoundTrips} Redis round trips`,
        };
      });
      rows.push({
        metric: "Redis-warm: Redis round trips (open + get)",
        value: roundTrips,
        unit: "round trips",
        target: "<= 1 per open + 1 per page miss",
        pass: roundTrips <= 3,
      });
      rows.push({
        metric: "memory-warm wall vs cold",
        value: memWarm.ms,
        unit: "ms",
        baseline: "cold, no cache",
        baselineValue: uncached.ms,
        ratio: memWarm.ms / uncached.ms,
      });
      rows.push({
        metric: "/tmp-warm wall vs cold (new processes)",
        value: fsWarm.ms,
        unit: "ms",
        baseline: "cold, new process",
        baselineValue: coldChild.ms,
        ratio: fsWarm.ms / coldChild.ms,
      });
      rows.push({
        metric: "Redis-warm wall vs cold (new processes)",
        value: redisWarm.ms,
        unit: "ms",
        baseline: "cold, new process",
        baselineValue: coldChild.ms,
        ratio: redisWarm.ms / coldChild.ms,
      });
      await tiered.close();

      // The Lambda bundle.
      const lambdaDir = path.join(work, "lambda");
      const baseDir = path.join(work, "base");
      const { bundleHandler } = (await import(pathToFileURL(path.join(ROOT, "examples/lambda/build.mjs")).href)) as {
        bundleHandler: (outdir: string, extra?: object) => Promise<{ metafile: Metafile }>;
      };
      const lambdaMeta = (await bundleHandler(lambdaDir)).metafile;
      const baseMeta = await bundleBaseline(baseDir);
      const rel = (p: string): string => path.relative(process.cwd(), p);
      const lambdaBytes = eagerBytes(lambdaMeta, rel(path.join(lambdaDir, "handler.mjs")));
      const baseBytes = eagerBytes(baseMeta, rel(path.join(baseDir, "base.mjs")));
      rows.push({
        metric: "Lambda bundle, JS loaded at start (minified)",
        value: lambdaBytes / 1024,
        unit: "KiB",
        baseline: "@aws-sdk/client-s3 alone",
        baselineValue: baseBytes / 1024,
        ratio: lambdaBytes / baseBytes,
        target: "<= +150 KB",
        pass: lambdaBytes - baseBytes <= 150_000,
      });
      const redisChunk = Object.entries(lambdaMeta.outputs).filter(
        ([o]) => !eagerBytesSet(lambdaMeta, rel(path.join(lambdaDir, "handler.mjs"))).has(o) && o.endsWith(".mjs"),
      );
      notes.push(
        `bundle: +${((lambdaBytes - baseBytes) / 1024).toFixed(1)} KiB over client-s3 alone; lazily loaded chunks (ioredis when REDIS_URL is set, ...): ${(redisChunk.reduce((a, [, v]) => a + v.bytes, 0) / 1024).toFixed(1)} KiB`,
      );
      // Alternate the two so load changes hit both alike.
      const lw: number[] = [];
      const lc: number[] = [];
      const bw: number[] = [];
      const bc: number[] = [];
      for (let i = 0; i < 2; i++) {
        const l = importMs(path.join(lambdaDir, "handler.mjs"));
        const b = importMs(path.join(baseDir, "base.mjs"));
        lw.push(...l.wall);
        lc.push(...l.cpu);
        bw.push(...b.wall);
        bc.push(...b.cpu);
      }
      const [lcm, bcm, lwm, bwm] = [median(lc), median(bc), median(lw), median(bw)];
      rows.push({
        metric: "Lambda bundle, cold import CPU time (median)",
        value: lcm,
        unit: "ms",
        baseline: "@aws-sdk/client-s3 alone",
        baselineValue: bcm,
        ratio: lcm / bcm,
        target: "<= +15 ms",
        pass: lcm - bcm <= 15,
      });
      rows.push({
        metric: "Lambda bundle, cold import wall time (median)",
        value: lwm,
        unit: "ms",
        baseline: "@aws-sdk/client-s3 alone",
        baselineValue: bwm,
        ratio: lwm / bwm,
      });
      const f = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(", ");
      notes.push(`cold import, CPU ms: example ${f(lc)}; client-s3 ${f(bc)}`);
      notes.push(
        `cold import, wall ms (dominated by waiting for a core when the machine is busy): example ${f(lw)}; client-s3 ${f(bw)}`,
      );
      notes.push(
        `the machine was shared with other work while this ran: wall times are noisy, request and byte counts are exact`,
      );
    } finally {
      direct.destroy();
      client.destroy();
      await proxy.close();
      await redis.stop();
      await moto.stop();
      fs.rmSync(work, { recursive: true, force: true });
    }
    return {
      name: "cache",
      workload: `open + one get of a ${ENTRIES.toLocaleString("en-US")}-entry v2 archive (8-byte bodies) on moto through a ${RTT_MS} ms proxy; Lambda example bundled with esbuild`,
      rows,
      notes,
    };
  },
};

function eagerBytesSet(meta: Metafile, entryOut: string): Set<string> {
  const seen = new Set<string>();
  const visit = (out: string): void => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const imp of meta.outputs[out]?.imports ?? [])
      if (imp.kind === "import-statement" && !imp.external) visit(imp.path);
  };
  visit(entryOut);
  return seen;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchmark.run(), null, 2));
}
