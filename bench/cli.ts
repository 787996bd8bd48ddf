/**
 * The command line against tar, in the same run, on the 100,000-file bench
 * tree and on the project's own node_modules (a real tree: links, modes,
 * deep folders): `des-pack pack` vs `tar -cf`, `des-pack extract` vs
 * `tar -xf`, and `des-pack ls` vs `tar -tf` of a 1,000,000-entry archive
 * (time to the first line and in total). Every run is the built CLI
 * (`npm run build` first) in its own process under /usr/bin/time, so its
 * peak RSS is its own. Medians of three, alternating who goes first.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { DATA_DIR, DEFAULT_TREE, ensureTree, median } from "./tree.js";
import { DesWriter } from "../src/write/writer.js";

const ROUNDS = Number(process.env.DES_BENCH_ROUNDS ?? 3);
const CLI = path.resolve("dist/cli.js");
const LS_ENTRIES = 1_000_000;

interface Run {
  ms: number;
  rssMb: number;
}

/** Runs a command under /usr/bin/time; wall time and peak RSS. */
function timedRun(argv: readonly string[], cwd?: string): Run {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", ...argv], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
    ...(cwd ? { cwd } : {}),
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const lines = r.stderr.trim().split("\n");
  return { ms, rssMb: Number(lines[lines.length - 1]) / 1024 };
}

/** Time until the first line of stdout, and in total. */
function firstLine(argv: readonly string[]): Promise<{ firstMs: number; totalMs: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let firstMs = -1;
    let lines = 0;
    child.stdout.on("data", (d: Buffer) => {
      if (firstMs < 0) firstMs = performance.now() - t0;
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve({ firstMs, totalMs: performance.now() - t0, lines })
        : reject(new Error(`${argv.join(" ")} exited ${code}`)),
    );
  });
}

function ratioRow(
  metric: string,
  ours: number[],
  base: number[],
  baseline: string,
  target: number,
  unit = "ms",
): BenchRow {
  const value = median(ours);
  const baselineValue = median(base);
  const ratio = value / baselineValue;
  return {
    metric,
    value: Math.round(value),
    unit,
    baseline,
    baselineValue: Math.round(baselineValue),
    ratio: Number(ratio.toFixed(2)),
    target: `<= ${target}x`,
    pass: ratio <= target,
  };
}

function rssRow(metric: string, runs: Run[]): BenchRow {
  const value = Math.max(...runs.map((r) => r.rssMb));
  return { metric, value: Math.round(value), unit: "MB", target: "< 200 MB", pass: value < 200 };
}

async function treeRows(label: string, root: string, rows: BenchRow[], log: (s: string) => void): Promise<void> {
  const work = path.join(DATA_DIR, `cli-bench-${label}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const tar = path.join(work, "t.tar");
  const des = path.join(work, "t.des");
  // Warm the page cache.
  spawnSync("tar", ["-cf", "/dev/null", "-C", root, "."]);
  const packs: Run[] = [];
  const tarPacks: Run[] = [];
  const extracts: Run[] = [];
  const tarExtracts: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`${label}: round ${round + 1}`);
    const order = round % 2 === 0 ? ["tar", "des"] : ["des", "tar"];
    for (const who of order) {
      if (who === "tar") {
        fs.rmSync(tar, { force: true });
        tarPacks.push(timedRun(["tar", "-cf", tar, "-C", root, "."]));
      } else {
        fs.rmSync(des, { force: true });
        packs.push(timedRun([process.execPath, CLI, "pack", root, des, "-q"]));
      }
    }
    for (const who of order) {
      const out = path.join(work, `x-${who}`);
      fs.rmSync(out, { recursive: true, force: true });
      fs.mkdirSync(out);
      if (who === "tar") tarExtracts.push(timedRun(["tar", "-xf", tar, "-C", out]));
      else extracts.push(timedRun([process.execPath, CLI, "extract", des, "-C", out, "-q"]));
    }
  }
  const diff = spawnSync("diff", ["-r", "--no-dereference", path.join(work, "x-tar"), path.join(work, "x-des")], {
    encoding: "utf8",
  });
  if (diff.status !== 0) throw new Error(`${label}: extracted trees differ: ${diff.stdout.slice(0, 500)}`);
  rows.push(
    ratioRow(
      `${label}: pack`,
      packs.map((r) => r.ms),
      tarPacks.map((r) => r.ms),
      "tar -cf",
      0.7,
    ),
  );
  rows.push(
    ratioRow(
      `${label}: extract`,
      extracts.map((r) => r.ms),
      tarExtracts.map((r) => r.ms),
      "tar -xf",
      1.0,
    ),
  );
  rows.push(rssRow(`${label}: pack peak RSS`, packs));
  rows.push(rssRow(`${label}: extract peak RSS`, extracts));
  fs.rmSync(work, { recursive: true, force: true });
}

/** A tar of n empty files, written directly (512-byte headers), so no tree of a million files is needed. */
function writeTar(file: string, names: readonly string[]): void {
  const fd = fs.openSync(file, "w");
  const block = Buffer.alloc(512 * 2048);
  let used = 0;
  const flush = (): void => {
    fs.writeSync(fd, block, 0, used);
    used = 0;
  };
  for (const name of names) {
    const h = block.subarray(used, used + 512);
    h.fill(0);
    h.write(name, 0, 100, "utf8");
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write("00000000000\0", 124);
    h.write("14000000000\0", 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\u000000", 257);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += h[i]!;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    used += 512;
    if (used === block.length) flush();
  }
  flush();
  fs.writeSync(fd, Buffer.alloc(1024));
  fs.closeSync(fd);
}

async function lsRows(rows: BenchRow[], log: (s: string) => void): Promise<void> {
  const work = path.join(DATA_DIR, "cli-bench-ls");
  fs.mkdirSync(work, { recursive: true });
  const des = path.join(work, "1m.des");
  const tar = path.join(work, "1m.tar");
  const names = Array.from(
    { length: LS_ENTRIES },
    (_, i) => `d${String(i % 1000).padStart(3, "0")}/f${String(i).padStart(7, "0")}.txt`,
  );
  if (!fs.existsSync(des)) {
    log(`writing ${LS_ENTRIES} entries`);
    const w = await DesWriter.create(des, { overwrite: true });
    for (let i = 0; i < names.length; i += 10_000)
      await w.addMany(names.slice(i, i + 10_000).map((n) => [n, new Uint8Array(0)] as const));
    await w.close();
    writeTar(tar, names);
  }
  const ours: { firstMs: number; totalMs: number }[] = [];
  const theirs: { totalMs: number }[] = [];
  // The floor under any node command line: a process that prints one line and exits.
  const floor: number[] = [];
  const oneLine = [process.execPath, "-e", 'require("fs").writeSync(1, "x\\n")'];
  for (let round = 0; round < ROUNDS; round++) {
    theirs.push(await firstLine(["tar", "-tf", tar]));
    const r = await firstLine([process.execPath, CLI, "ls", des]);
    if (r.lines !== LS_ENTRIES) throw new Error(`ls printed ${r.lines} lines`);
    ours.push(r);
    floor.push((await firstLine(oneLine)).firstMs);
  }
  const first = median(ours.map((r) => r.firstMs));
  rows.push({
    metric: `ls of ${LS_ENTRIES} entries: first line`,
    value: Math.round(first),
    unit: "ms",
    target: "< 100 ms",
    pass: first < 100,
  });
  rows.push({
    metric: "info: node start to its first line (`node -e` printing one line, same environment)",
    value: Math.round(median(floor)),
    unit: "ms",
  });
  rows.push(
    ratioRow(
      `ls of ${LS_ENTRIES} entries: total`,
      ours.map((r) => r.totalMs),
      theirs.map((r) => r.totalMs),
      "tar -tf",
      2,
    ),
  );
  rows.push(rssRow(`ls of ${LS_ENTRIES} entries: peak RSS`, [timedRun([process.execPath, CLI, "ls", des, "-q"])]));
}

export const benchmark: Benchmark = {
  name: "cli",
  async run(): Promise<BenchReport> {
    const log = (s: string): void => void process.stderr.write(`  [cli] ${s}\n`);
    if (!fs.existsSync(CLI)) throw new Error("run npm run build first (the benchmark runs dist/cli.js)");
    const tree = ensureTree(DEFAULT_TREE, log);
    const rows: BenchRow[] = [];
    await treeRows("100k-file tree", tree.root, rows, log);
    await treeRows("node_modules", path.resolve("node_modules"), rows, log);
    await lsRows(rows, log);
    return {
      name: "cli",
      workload: `the built CLI vs tar: ${tree.files.length} files of ${DEFAULT_TREE.minSize}-${DEFAULT_TREE.maxSize} bytes; the project's node_modules; ls of ${LS_ENTRIES} entries. Medians of ${ROUNDS}.`,
      rows,
      notes: [
        "Wall times include process start for both sides.",
        ...(process.env.NODE_EXTRA_CA_CERTS
          ? [
              "NODE_EXTRA_CA_CERTS is set in this environment: every node process (ours, and the `node -e` floor row) reads that certificate file at start, before any of its code runs.",
            ]
          : []),
        "The machine was shared with other work while measuring: ratios matter, not absolute times.",
      ],
    };
  },
};
