/**
 * Memory of the reader, each scenario in a fresh process
 * (test/read-memory-child.mts, `--expose-gc`): one big compressed entry,
 * iterMany over entries bigger than its budget, 100,000 pending gets, and
 * list()/entries() of 1,000,000 entries.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { BENCH_DIR, DATA_DIR } from "./tree.js";

type Out = Record<string, number | string>;

function child(...args: (string | number)[]): Out {
  const script = path.join(BENCH_DIR, "..", "test", "read-memory-child.mts");
  const r = spawnSync(
    process.execPath,
    ["--expose-gc", "--max-semi-space-size=16", "--import", "tsx", script, ...args.map(String)],
    {
      cwd: path.dirname(BENCH_DIR),
      encoding: "utf8",
      maxBuffer: 16 << 20,
      timeout: 600_000,
    },
  );
  if (r.status !== 0) throw new Error(`read-memory-child ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Out;
}

const num = (o: Out, k: string): number => Number(o[k]);

export const benchmark: Benchmark = {
  name: "read-memory",
  async run(): Promise<BenchReport> {
    fs.mkdirSync(DATA_DIR, { recursive: true });
    const rows: BenchRow[] = [];
    const one = path.join(DATA_DIR, "read-memory-one.des");
    child("make-zeros", one, 1, 512);
    const big = child("get-one", one, 1024);
    rows.push({
      metric: "get of one 512 MiB gzip entry: peak RSS / entry size",
      value: num(big, "ratio"),
      unit: "x",
      target: "1x (was 2x)",
      pass: num(big, "ratio") < 1.3,
    });
    const six = path.join(DATA_DIR, "read-memory-six.des");
    child("make-zeros", six, 6, 64);
    const it = child("iter-many", six, 6, 64);
    rows.push({
      metric: "iterMany of 6 x 64 MiB entries, maxBatchBytes 64 MiB: peak RSS above start",
      value: num(it, "peakAboveMiB"),
      unit: "MiB",
      baseline: "all six held at once (1x each)",
      baselineValue: 384,
      ratio: +(num(it, "peakAboveMiB") / 384).toFixed(2),
    });
    const gets = child("gets", 100_000);
    rows.push({
      metric: "100,000 concurrent gets (160-byte bodies): heap per pending get",
      value: num(gets, "bytesPerGet"),
      unit: "bytes",
      baseline: "body size",
      baselineValue: 160,
      ratio: +(num(gets, "bytesPerGet") / 160).toFixed(1),
    });
    const list = child("list", 1_000_000);
    rows.push({
      metric: "list() of 1,000,000 entries: peak heap per entry",
      value: num(list, "listPeakBytesPerEntry"),
      unit: "bytes",
    });
    rows.push({
      metric: "list(): peak heap per entry beyond the names' characters",
      value: num(list, "listPeakBeyondNameCharsPerEntry"),
      unit: "bytes",
      target: "< 100",
      pass: num(list, "listPeakBeyondNameCharsPerEntry") < 100,
    });
    rows.push({
      metric: "list(): heap held by the result per entry",
      value: num(list, "heldBytesPerEntry"),
      unit: "bytes",
    });
    rows.push({
      metric: "entries() walk of 1,000,000 entries: peak heap",
      value: num(list, "entriesPeakMiB"),
      unit: "MiB",
    });
    fs.rmSync(one, { force: true });
    fs.rmSync(six, { force: true });
    return {
      name: "read-memory",
      workload:
        "zeros compressed with gzip level 1 (a few KB on disk per entry); 160-byte bodies for the gets; names of 8 characters for list()",
      rows,
      notes: [
        "Peak RSS from process.resourceUsage().maxRSS, heap from process.memoryUsage(); one fresh process per scenario.",
        "RSS peaks include decoded entries already taken by the consumer but not yet collected.",
      ],
    };
  },
};
