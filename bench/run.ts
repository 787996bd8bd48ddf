/**
 * `npm run bench [-- name...]`: runs the benchmark modules in sequence (all,
 * or those named), prints Markdown tables, and writes
 * bench/results/latest.json and bench/results/latest.md. A filtered run
 * replaces only the reports it ran and keeps the others from the last run.
 *
 * Options: `--clean` deletes bench/.data (the generated tree and archives)
 * at the end.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { BENCH_DIR, DATA_DIR } from "./tree.js";

/** In this order; a module that is not there (s3-coalescing is optional) is skipped. */
const MODULES = [
  "pack",
  "read",
  "read-memory",
  "open-lookup",
  "cold",
  "planning",
  "s3-coalescing",
  "append",
  "cache",
  "store",
  "cli",
];

interface Machine {
  node: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  loadAverageAtStart: number[];
}

interface RunReport extends BenchReport {
  readonly ranAt: string;
  readonly seconds: number;
  readonly error?: string;
}

interface Results {
  machine: Machine;
  updated: string;
  reports: RunReport[];
}

function machine(): Machine {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism?.() ?? cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return x.toLocaleString("en-US", { maximumFractionDigits: digits });
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function rowMd(r: BenchRow): string {
  const value = `${fmt(r.value)} ${r.unit}`;
  const baseline =
    r.baseline !== undefined
      ? `${r.baseline}${r.baselineValue !== undefined ? `: ${fmt(r.baselineValue)} ${r.unit}` : ""}`
      : "";
  const ratio = r.ratio !== undefined ? fmt(r.ratio) : "";
  const pass = r.pass === undefined ? "" : r.pass ? "yes" : "**no**";
  return `| ${[r.metric, value, baseline, ratio, r.target ?? "", pass].map(cell).join(" | ")} |`;
}

function reportMd(r: RunReport): string {
  const out = [`## ${r.name}`, "", `${r.workload}`, "", `Ran ${r.ranAt} in ${r.seconds.toFixed(0)} s.`, ""];
  if (r.error) out.push(`**Failed:** ${r.error}`, "");
  if (r.rows.length > 0) {
    out.push("| metric | value | baseline | ratio | target | pass |", "| --- | --- | --- | --- | --- | --- |");
    for (const row of r.rows) out.push(rowMd(row));
    out.push("");
  }
  for (const n of r.notes ?? []) out.push(`- ${n}`);
  if ((r.notes ?? []).length > 0) out.push("");
  return out.join("\n");
}

function resultsMd(res: Results): string {
  const m = res.machine;
  const targets = res.reports.flatMap((r) => r.rows.filter((row) => row.pass !== undefined));
  const passed = targets.filter((row) => row.pass).length;
  return [
    "# des-pack benchmarks",
    "",
    `Updated ${res.updated}. Node ${m.node}, ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; load average at start ${m.loadAverageAtStart.join(" / ")}.`,
    "",
    `Targets met: ${passed} of ${targets.length}. Ratios compare with a baseline measured in the same run (see bench/README.md).`,
    "",
    ...res.reports.map(reportMd),
  ].join("\n");
}

async function loadBenchmark(name: string): Promise<Benchmark | undefined> {
  const file = path.join(BENCH_DIR, `${name}.ts`);
  if (!fs.existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as { benchmark?: Benchmark };
  return mod.benchmark;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const clean = args.includes("--clean");
  const wanted = args.filter((a) => !a.startsWith("--"));
  for (const w of wanted)
    if (!MODULES.includes(w)) throw new Error(`unknown benchmark ${w} (known: ${MODULES.join(", ")})`);
  const names = wanted.length > 0 ? MODULES.filter((m) => wanted.includes(m)) : MODULES;

  const resultsDir = path.join(BENCH_DIR, "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  const jsonPath = path.join(resultsDir, "latest.json");
  let previous: RunReport[] = [];
  try {
    previous = (JSON.parse(fs.readFileSync(jsonPath, "utf8")) as Results).reports;
  } catch {
    // first run
  }
  const m = machine();
  process.stderr.write(`node ${m.node}, ${m.cpu}, ${m.cores} cores, load ${m.loadAverageAtStart.join(" ")}\n`);

  const fresh: RunReport[] = [];
  for (const name of names) {
    const bench = await loadBenchmark(name);
    if (!bench) {
      process.stderr.write(`${name}: no bench/${name}.ts exporting \`benchmark\`, skipped\n`);
      continue;
    }
    (globalThis as { gc?: () => void }).gc?.();
    process.stderr.write(`${name} ...\n`);
    const t0 = performance.now();
    let report: RunReport;
    try {
      const r = await bench.run();
      report = { ...r, ranAt: new Date().toISOString(), seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`${name} failed: ${err.stack ?? String(e)}\n`);
      report = {
        name,
        workload: "",
        rows: [],
        ranAt: new Date().toISOString(),
        seconds: (performance.now() - t0) / 1000,
        error: err.message,
      };
    }
    fresh.push(report);
    process.stdout.write(reportMd(report) + "\n");
  }

  // Keep reports of benchmarks not run this time, in module order.
  const byName = new Map(previous.map((r) => [r.name, r]));
  for (const r of fresh) byName.set(r.name, r);
  const ordered = [
    ...MODULES.flatMap((n) => (byName.has(n) ? [byName.get(n)!] : [])),
    ...[...byName.values()].filter((r) => !MODULES.includes(r.name)),
  ];
  const results: Results = { machine: m, updated: new Date().toISOString(), reports: ordered };
  const tmp = `${jsonPath}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(results, null, 2) + "\n");
  fs.renameSync(tmp, jsonPath);
  const mdPath = path.join(resultsDir, "latest.md");
  fs.writeFileSync(`${mdPath}.tmp`, resultsMd(results));
  fs.renameSync(`${mdPath}.tmp`, mdPath);
  process.stderr.write(`wrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), mdPath)}\n`);

  if (clean) {
    fs.rmSync(DATA_DIR, { recursive: true, force: true });
    process.stderr.write(`removed ${DATA_DIR}\n`);
  }
  if (fresh.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
