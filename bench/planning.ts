/**
 * Read planning by cost: four batch shapes read over HTTP from
 * bench/range-server.ts (20 ms to first byte, 90 MB/s per connection; then
 * again through one 100 Mbit/s link shared by all connections), with the
 * planner against (a) one GET per entry with the same concurrency cap,
 * (b) the old fixed rule (merge gaps up to 1 MiB, spans up to 8 MiB, 8 in
 * flight), and (c) the model's lower bound for the batch, computed here by
 * its own DP over merge sets (no span limit, so it is a true lower bound).
 *
 * The index pages a batch needs are loaded before the timed read (one
 * `has` pass), so the rows measure the data reads alone.
 *
 * The planner's model is the one the reader learned from its own reads
 * (src/io/learn.ts): the index-page pass and untimed warm-up reads of
 * other entries (a batch of the timed batch's size, then two small ones)
 * come before the timed read. (c) is computed under that
 * model. For comparison, the run also measures this host's capacities once
 * with the same client against the same server unpaced (the total rate of
 * many parallel big GETs, the time per request of many tiny GETs at the
 * concurrency cap) and reports the plan of a reader given that probed model
 * and (c) under it.
 */
import type { BenchReport, BenchRow, Benchmark } from "./lib.js";
import { rng } from "./lib.js";
import { DesReader, HttpSource } from "../src/index.js";
import type { CostModel } from "../src/io/cost.js";
import { REMOTE_COST } from "../src/io/cost.js";
import { estimateWallMs, planReads } from "../src/read/plan.js";
import { startRangeServer } from "./range-server.js";
import type { RangeServer, RangeServerOptions } from "./range-server.js";
import { DENSE, MILLION, SPARSE, ensureDes } from "./workloads.js";
import { HOST_GETS, HOST_GET_BYTES, HOST_REPS, TINY_BYTES, TINY_GETS, measureHost, median } from "./host-probe.js";
import type { HostCapacity } from "./host-probe.js";
import type { Workload } from "./workloads.js";

const LATENCY_MS = 20;
const CONN_BYTES_PER_MS = 90_000; // 90 MB/s
const LINK_BYTES_PER_MS = 12_500; // 100 Mbit/s
const CONCURRENCY = 64;
interface Shape {
  readonly name: string;
  readonly workload: Workload;
  readonly names: string[];
}

interface Run {
  readonly requests: number;
  readonly bytes: number;
  readonly ms: number;
  /** Peak of ArrayBuffer memory during the read, above what was there before it (sampled). */
  readonly peakBytes: number;
  /** Most requests the server had in flight at once. */
  readonly peakInFlight: number;
}

function randomNames(w: Workload, count: number, seed: number): string[] {
  const r = rng(seed);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(r() * w.files.length));
  return [...chosen].map((i) => w.files[i]!.rel);
}

/** `count` entries next to each other in the data region (the writer keeps name order there). */
function consecutiveNames(w: Workload, count: number, seed: number): string[] {
  const start = Math.floor(rng(seed)() * (w.files.length - count));
  return w.files.slice(start, start + count).map((f) => f.rel);
}

/**
 * (c): the least wall time the model allows for these ranges. Any plan of k
 * reads over n disjoint ranges reads the wanted bytes plus k - n merged gaps;
 * for each k the cheapest merges the smallest gaps, and the model's wall time
 * never falls when bytes grow at fixed k. So the minimum over k of the model
 * at (k, wanted + the n - k smallest gaps) is the optimum over all plans.
 */
function lowerBound(
  ranges: readonly { offset: number; length: number }[],
  model: CostModel,
): {
  ms: number;
  requests: number;
  bytes: number;
  fewest: { requests: number; ms: number };
  /** The model's least wall time of any plan of at most `k` reads. */
  bestWithin(k: number): number;
} {
  const sorted = [...ranges].sort((a, b) => a.offset - b.offset);
  const atoms: { start: number; end: number }[] = [];
  for (const r of sorted) {
    const last = atoms[atoms.length - 1];
    if (last && r.offset <= last.end) last.end = Math.max(last.end, r.offset + r.length);
    else atoms.push({ start: r.offset, end: r.offset + r.length });
  }
  const gaps = atoms
    .slice(1)
    .map((a, i) => a.start - atoms[i]!.end)
    .sort((x, y) => x - y);
  let bytes = atoms.reduce((s, a) => s + a.end - a.start, 0);
  const sweep = [{ ms: estimateWallMs(model, atoms.length, bytes), requests: atoms.length, bytes }];
  for (let j = 0; j < gaps.length; j++) {
    bytes += gaps[j]!;
    const requests = atoms.length - j - 1;
    sweep.push({ ms: estimateWallMs(model, requests, bytes), requests, bytes });
  }
  const best = sweep.reduce((a, b) => (b.ms < a.ms ? b : a));
  // The fewest reads of any plan within 1.3x of the bound: of the plans of k reads the sweep's is the fastest.
  const fewest = sweep.filter((p) => p.ms <= best.ms * 1.3).reduce((a, b) => (b.requests < a.requests ? b : a));
  const bestWithin = (k: number): number =>
    sweep.filter((p) => p.requests <= k).reduce((a, b) => Math.min(a, b.ms), Infinity);
  return { ...best, fewest: { requests: fewest.requests, ms: fewest.ms }, bestWithin };
}

async function timedRead(
  server: RangeServer,
  reader: DesReader,
  names: readonly string[],
  opts: Parameters<DesReader["getMany"]>[1],
): Promise<Run> {
  server.resetStats();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)), 2);
  const t0 = performance.now();
  let got = 0;
  for await (const [, body] of reader.iterMany(names, opts)) got += body.length > 0 ? 1 : 1;
  const ms = performance.now() - t0;
  clearInterval(sampler);
  if (got !== names.length) throw new Error(`read ${got} of ${names.length}`);
  return {
    requests: server.stats.requests,
    bytes: server.stats.bytes,
    ms,
    peakBytes: peak,
    peakInFlight: server.stats.peakInFlight,
  };
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

async function runShape(
  shape: Shape,
  link: "per-connection" | "shared",
  host: HostCapacity,
  rows: BenchRow[],
  notes: string[],
  log: (s: string) => void,
): Promise<void> {
  const timing: RangeServerOptions = {
    firstByteMs: LATENCY_MS,
    bytesPerMs: CONN_BYTES_PER_MS,
    ...(link === "shared" ? { linkBytesPerMs: LINK_BYTES_PER_MS } : {}),
  };
  // The model of the server's pacing plus this host's link and per-request cost as probed at the start.
  const probed: CostModel = {
    firstByteMs: LATENCY_MS,
    bytesPerMs: CONN_BYTES_PER_MS,
    maxConcurrency: CONCURRENCY,
    maxInflightBytes: REMOTE_COST.maxInflightBytes,
    maxSpan: REMOTE_COST.maxSpan,
    linkBytesPerMs: link === "shared" ? LINK_BYTES_PER_MS : Infinity,
    requestCpuMs: host.requestCpuMs,
    clientBytesPerMs: host.linkBytesPerMs,
  };
  const server = await startRangeServer(shape.workload.des, timing);
  // The reader learns its model from its own reads (HttpSource's default); only the concurrency cap is set.
  const reader = await DesReader.open(new HttpSource(server.url), { cost: { maxConcurrency: CONCURRENCY } });
  const withProbed = await DesReader.open(new HttpSource(server.url), { cost: probed });
  try {
    for (const n of shape.names) if (!(await reader.has(n))) throw new Error(`${n} missing`);
    for (const n of shape.names) if (!(await withProbed.has(n))) throw new Error(`${n} missing`);
    const stats = await Promise.all(shape.names.map((n) => reader.stat(n)));
    const wanted = stats.map((s) => ({ offset: s.offset, length: s.storedSize }));
    const needed = wanted.reduce((s, w) => s + w.length, 0);
    const label = `${shape.name}, ${link === "shared" ? "shared 100 Mbit/s link" : "90 MB/s per connection"}`;
    log(label);
    // Untimed: open the connections and warm the code paths, so the first strategy timed pays no setup; the
    // learning reader sees these reads (small ones at 64 in flight, the fixed rule's merged ones at 8).
    // The first batch as big as the timed one, of other names, one GET each: in a run the first batch of
    // that size took up to twice as long as the same batch right after it, whatever the strategy (the
    // client's and the server's code paths warming), and it must not be charged to the strategy timed first.
    const warmNames = randomNames(shape.workload, 128, 99).filter((n) => !shape.names.includes(n));
    const firstBatch = randomNames(shape.workload, shape.names.length, 98).filter((n) => !shape.names.includes(n));
    for (const r of [reader, withProbed]) {
      await timedRead(server, r, firstBatch, { maxGap: 0, maxSpan: 1, concurrency: CONCURRENCY });
      await timedRead(server, r, warmNames, { maxGap: 0, maxSpan: 1, concurrency: CONCURRENCY });
      await timedRead(server, r, warmNames, { maxGap: 1 << 20, maxSpan: 8 << 20, concurrency: 8 });
    }
    const model = reader.costModel()!;
    const bound = lowerBound(wanted, model);
    const probedBound = lowerBound(wanted, probed);
    const plan = planReads(
      wanted.map((w, i) => ({ ...w, item: i })),
      model,
    );
    const probedPlan = planReads(
      wanted.map((w, i) => ({ ...w, item: i })),
      probed,
    );
    const planned = await timedRead(server, reader, shape.names, {});
    const plannedProbed = await timedRead(server, withProbed, shape.names, {});
    const shipped =
      link === "per-connection"
        ? await timedRead(server, reader, shape.names, {
            cost: { ...REMOTE_COST, firstByteMs: LATENCY_MS, maxConcurrency: CONCURRENCY },
          })
        : undefined;
    const exact = await timedRead(server, reader, shape.names, { maxGap: 0, maxSpan: 1, concurrency: CONCURRENCY });
    const fixed = await timedRead(server, reader, shape.names, { maxGap: 1 << 20, maxSpan: 8 << 20, concurrency: 8 });
    const toBound = planned.ms / bound.ms;
    rows.push({
      metric: `${label}: wall, planned (learned model)`,
      value: Math.round(planned.ms),
      unit: "ms",
      baseline: "(c) lower bound under the learned model",
      baselineValue: Math.round(bound.ms),
      ratio: r2(toBound),
      target: "<= 1.3x lower bound",
      pass: toBound <= 1.3,
    });
    rows.push({
      metric: `${label}: info: learned model's estimate of (a) and of the plan, against their measured walls`,
      value: Math.round(estimateWallMs(model, exact.requests, exact.bytes)),
      unit: "ms",
      baseline: `(a) measured ${Math.round(exact.ms)} ms; plan estimated ${Math.round(plan.wallMs)} ms, measured ${Math.round(planned.ms)} ms`,
      ratio: r2(estimateWallMs(model, exact.requests, exact.bytes) / exact.ms),
    });
    rows.push({
      metric: `${label}: info: wall, planned (learned model) vs (c) under the probed model`,
      value: Math.round(planned.ms),
      unit: "ms",
      baseline: "(c) under the probed model",
      baselineValue: Math.round(probedBound.ms),
      ratio: r2(planned.ms / probedBound.ms),
    });
    rows.push({
      metric: `${label}: info: planned with the probed model (host figures probed once, unpaced)`,
      value: Math.round(plannedProbed.ms),
      unit: "ms",
      baseline: `(a) one GET per entry ${Math.round(exact.ms)} ms; ${plannedProbed.requests} GETs, ${r2(plannedProbed.bytes / needed)}x bytes; (c) under the probed model`,
      baselineValue: Math.round(probedBound.ms),
      ratio: r2(plannedProbed.ms / probedBound.ms),
    });
    rows.push({
      metric: `${label}: wall vs one GET per entry`,
      value: Math.round(planned.ms),
      unit: "ms",
      baseline: "(a) one GET per entry",
      baselineValue: Math.round(exact.ms),
      ratio: r2(planned.ms / exact.ms),
      target: "<= 1.0x (never slower)",
      pass: planned.ms <= exact.ms * 1.0,
    });
    const vsFixed = planned.ms / fixed.ms;
    rows.push({
      metric: `${label}: wall vs fixed rule`,
      value: Math.round(planned.ms),
      unit: "ms",
      baseline: "(b) maxGap 1 MiB, maxSpan 8 MiB, 8 in flight",
      baselineValue: Math.round(fixed.ms),
      ratio: r2(vsFixed),
      ...(shape.name.startsWith("sparse") ? { target: "<= 0.5x (b)", pass: vsFixed <= 0.5 } : {}),
    });
    const amp = planned.bytes / needed;
    rows.push({
      metric: `${label}: bytes moved / bytes needed`,
      value: r2(amp),
      unit: "x",
      baseline: `(a) ${r2(exact.bytes / needed)}x, (b) ${r2(fixed.bytes / needed)}x, (c) ${r2(bound.bytes / needed)}x`,
      ...(shape.name.startsWith("sparse") ? { target: "<= 3x", pass: amp <= 3 } : {}),
    });
    rows.push({
      metric: `${label}: requests`,
      value: planned.requests,
      unit: "GETs",
      baseline: `(a) ${exact.requests}, (b) ${fixed.requests}, (c) ${bound.requests}`,
      ratio: r2(planned.requests / exact.requests),
      ...(shape.name.startsWith("dense")
        ? { target: "<= 1/10 of (a)", pass: planned.requests * 10 <= exact.requests }
        : {}),
    });
    if (shape.name.startsWith("dense")) {
      rows.push({
        metric: `${label}: info: fewest GETs of any plan within 1.3x of (c), under the same model`,
        value: bound.fewest.requests,
        unit: "GETs",
        baseline: `1/10 of (a): ${exact.requests / 10}; that plan's estimate ${Math.round(bound.fewest.ms)} ms; the fastest plan of at most ${exact.requests / 10} GETs: ${Math.round(bound.bestWithin(exact.requests / 10))} ms = ${r2(bound.bestWithin(exact.requests / 10) / bound.ms)}x (c)`,
        ratio: r2(bound.fewest.requests / exact.requests),
      });
    }
    if (shipped) {
      rows.push({
        metric: `${label}: info: planned with the shipped default model (client link 1 Gbit/s)`,
        value: Math.round(shipped.ms),
        unit: "ms",
        baseline: "(a) one GET per entry",
        baselineValue: Math.round(exact.ms),
        ratio: r2(shipped.ms / exact.ms),
      });
      rows.push({
        metric: `${label}: info: shipped default model, bytes moved / needed and GETs`,
        value: r2(shipped.bytes / needed),
        unit: "x",
        baseline: `${shipped.requests} GETs`,
      });
    }
    const f = (x: number | undefined, d = 0): string => (x === undefined ? "none" : x.toFixed(d));
    notes.push(
      `${label}: learned model after the warm-up: firstByteMs ${f(model.firstByteMs, 1)}, bytesPerMs ${f(model.bytesPerMs)}, requestCpuMs ${f(model.requestCpuMs, 3)}, clientBytesPerMs ${f(model.clientBytesPerMs)}, linkBytesPerMs ${f(model.linkBytesPerMs)} (the source's default where nothing was learned); the probed model's plan: ${probedPlan.requests} reads, ${(probedPlan.bytes / 1e6).toFixed(2)} MB, estimated ${Math.round(probedPlan.wallMs)} ms.`,
    );
    notes.push(
      `${label}: planner predicted ${plan.requests} reads, ${(plan.bytes / 1e6).toFixed(2)} MB, ${Math.round(plan.wallMs)} ms, ${plan.concurrency} in flight (server saw at most ${planned.peakInFlight}; (a) ${exact.peakInFlight}); peak ArrayBuffer growth during the read ${(planned.peakBytes / 2 ** 20).toFixed(1)} MiB planned, ${(fixed.peakBytes / 2 ** 20).toFixed(1)} MiB fixed rule (budget ${(model.maxInflightBytes / 2 ** 20).toFixed(0)} MiB + results ${(needed / 2 ** 20).toFixed(1)} MiB).`,
    );
  } finally {
    await reader.close();
    await withProbed.close();
    await server.close();
  }
}

export const benchmark: Benchmark = {
  name: "planning",
  async run(): Promise<BenchReport> {
    const log = (s: string): void => void process.stderr.write(`  [planning] ${s}\n`);
    const sparse = await ensureDes(SPARSE, log);
    const dense = await ensureDes(DENSE, log);
    const million = await ensureDes(MILLION, log);
    const shapes: Shape[] = [
      { name: "sparse (1,000 random of 100,000, 1-8 KiB)", workload: sparse, names: randomNames(sparse, 1000, 1) },
      { name: "dense (1,000 random of 100,000, 16-512 B)", workload: dense, names: randomNames(dense, 1000, 2) },
      {
        name: "clustered (1,000 consecutive of 100,000, 1-8 KiB)",
        workload: sparse,
        names: consecutiveNames(sparse, 1000, 3),
      },
      {
        name: "large (10,000 random of 1,000,000, 16-512 B)",
        workload: million,
        names: randomNames(million, 10_000, 4),
      },
    ];
    const rows: BenchRow[] = [];
    const notes: string[] = [];
    const host = await measureHost(sparse.des, log);
    for (const link of ["per-connection", "shared"] as const)
      for (const s of shapes) await runShape(s, link, host, rows, notes, log);
    return {
      name: "planning",
      workload: `four batch shapes over HTTP from bench/range-server.ts: ${LATENCY_MS} ms to first byte, ${CONN_BYTES_PER_MS / 1000} MB/s per connection, then also a ${(LINK_BYTES_PER_MS * 8) / 1000} Mbit/s link shared by all connections; planner concurrency cap ${CONCURRENCY}; index pages loaded before the timed read`,
      rows,
      notes: [
        `host capacities measured in this run before the scenarios, with the same HttpSource client against the same range server unpaced (0 ms, no rate limit): host link = total rate of ${HOST_GETS} parallel GETs of ${HOST_GET_BYTES >> 20} MiB, median of ${HOST_REPS} (${host.linkRuns.map((x) => (x / 1000).toFixed(0)).join(", ")} MB/s) = ${(host.linkBytesPerMs / 1000).toFixed(0)} MB/s; per-request client cost = wall of ${TINY_GETS} GETs of ${TINY_BYTES} B at ${CONCURRENCY} in flight / ${TINY_GETS}, median of ${HOST_REPS} (${host.cpuRuns.map((x) => x.toFixed(3)).join(", ")} ms) = ${host.requestCpuMs.toFixed(3)} ms (HttpSource's default transport, node:http keep-alive); the same probe through the global fetch (HttpSource's \`fetch\` option), interleaved with it: ${host.fetchCpuRuns.map((x) => x.toFixed(3)).join(", ")} ms = ${median(host.fetchCpuRuns).toFixed(3)} ms.`,
        `the planned rows use the model the reader learned from its own reads (docs/performance.md, "The learned model"): the index pages of the batch loaded one by one, then untimed warm-up reads: a batch of as many other entries as the timed one, one GET each at ${CONCURRENCY} in flight (the first batch of a size pays for warming the code paths of client and server, whatever its strategy), then 128 other entries, one GET each and then the fixed rule at 8 in flight; only maxConcurrency ${CONCURRENCY} is set. (c) is computed under that same learned model; the info rows give (c) under the probed model and the plan of a reader given the probed model.`,
        `the probed model: firstByteMs ${LATENCY_MS}, bytesPerMs ${CONN_BYTES_PER_MS} (90 MB/s per connection), maxConcurrency ${CONCURRENCY}, requestCpuMs = the measured per-request cost, clientBytesPerMs = the measured host link (the two are the client host's own serial time: k reads of B bytes take at least k x requestCpuMs + B / clientBytesPerMs + one latency), and on the shared-link runs linkBytesPerMs ${LINK_BYTES_PER_MS} (100 Mbit/s, a network that runs while the client works).`,
        "(c) is the optimum over all merge plans under that model (no span cap, so a true lower bound), computed in the benchmark by its own pass over the sorted gaps.",
        ...notes,
      ],
    };
  },
};
