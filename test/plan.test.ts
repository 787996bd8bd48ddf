import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { LATENCY_SLACK, chooseStep, concurrencyOf, estimateWallMs, planCost, planReads } from "../src/read/plan.js";
import { runBounded } from "../src/read/coalesce.js";
import type { RangeWant } from "../src/read/coalesce.js";
import { LOCAL_COST, REMOTE_COST } from "../src/io/cost.js";
import type { CostModel } from "../src/io/cost.js";
import { rng } from "../bench/lib.js";

const KiB = 1024;
const MiB = 1 << 20;

/** Every plan by brute force (every subset of gaps merged, reads longer than maxSpan refused): its reads and cost. */
function allPlans(
  ranges: readonly { offset: number; length: number }[],
  model: CostModel,
): { requests: number; cost: number; bytes: number }[] {
  const sorted = [...ranges].sort((a, b) => a.offset - b.offset);
  const m = sorted.length - 1;
  const plans: { requests: number; cost: number; bytes: number }[] = [];
  for (let mask = 0; mask < 1 << m; mask++) {
    let requests = 0;
    let bytes = 0;
    let ok = true;
    let start = sorted[0]!.offset;
    for (let i = 0; i <= m; i++) {
      const end = sorted[i]!.offset + sorted[i]!.length;
      const joinNext = i < m && (mask >> i) & 1;
      if (!joinNext) {
        const len = end - start;
        if (len > model.maxSpan && start !== sorted[i]!.offset) ok = false;
        requests++;
        bytes += len;
        if (i < m) start = sorted[i + 1]!.offset;
      }
    }
    if (ok) plans.push({ requests, bytes, cost: planCost(model, requests, bytes) });
  }
  return plans;
}

/**
 * The optimum by brute force: least cost; under `latency`, of the plans
 * within the slack of it, the least reads x bytes (ties: fewer reads).
 */
function bruteForce(
  ranges: readonly { offset: number; length: number }[],
  model: CostModel,
): { cost: number; requests: number; bytes: number } {
  const plans = allPlans(ranges, model);
  const least = Math.min(...plans.map((p) => p.cost));
  if ((model.objective ?? "latency") !== "latency") {
    const requests = Math.min(...plans.filter((p) => p.cost === least).map((p) => p.requests));
    return { cost: least, requests, bytes: NaN };
  }
  const within = plans.filter((p) => p.cost <= least * (1 + LATENCY_SLACK));
  const use = Math.min(...within.map((p) => p.requests * p.bytes));
  const pick = within.filter((p) => p.requests * p.bytes === use).reduce((a, b) => (b.requests < a.requests ? b : a));
  return { cost: least, requests: pick.requests, bytes: pick.bytes };
}

/** Disjoint sorted ranges from lengths and gaps. */
function layout(parts: readonly { gap: number; length: number }[]): RangeWant<number>[] {
  let at = 16;
  return parts.map((p, i) => {
    at += p.gap;
    const w = { offset: at, length: p.length, item: i };
    at += p.length;
    return w;
  });
}

function checkCovers<T>(wants: readonly RangeWant<T>[], plan: ReturnType<typeof planReads<T>>): void {
  let seen = 0;
  let prevEnd = -1;
  const bad: string[] = [];
  for (const g of plan.groups) {
    if (g.offset <= prevEnd) bad.push(`group at ${g.offset} overlaps the previous one`);
    prevEnd = g.offset + g.length;
    for (const w of g.wants) {
      if (w.offset < g.offset || w.offset + w.length > g.offset + g.length)
        bad.push(`want at ${w.offset} outside its group`);
      seen++;
    }
  }
  expect(bad).toEqual([]);
  expect(seen).toBe(wants.length);
  expect(plan.requests).toBe(plan.groups.length);
  expect(plan.bytes).toBe(plan.groups.reduce((s, g) => s + g.length, 0));
}

const models: Record<string, CostModel> = {
  remote: REMOTE_COST,
  remoteFew: { ...REMOTE_COST, maxConcurrency: 4 },
  sharedLink: { ...REMOTE_COST, linkBytesPerMs: 12_500 },
  tightBudget: { ...REMOTE_COST, maxInflightBytes: 256 * KiB },
  local: LOCAL_COST,
  requestCpu: { ...REMOTE_COST, linkBytesPerMs: Infinity, requestCpuMs: 2 },
  requestCpuShared: { ...REMOTE_COST, linkBytesPerMs: 12_500, requestCpuMs: 0.5 },
  clientHost: { ...REMOTE_COST, linkBytesPerMs: Infinity, requestCpuMs: 0.6, clientBytesPerMs: 150_000 },
  requests: { ...REMOTE_COST, objective: "requests" },
  weights: { ...REMOTE_COST, objective: { perRequest: 0.0004, perByte: 1e-9, perMs: 0 } },
};

describe("planReads", () => {
  it("finds the brute-force optimum of its model on small inputs", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ gap: fc.integer({ min: 1, max: 4 * MiB }), length: fc.integer({ min: 1, max: 512 * KiB }) }),
          { minLength: 1, maxLength: 11 },
        ),
        fc.constantFrom(...Object.keys(models)),
        (parts, name) => {
          const model = { ...models[name]!, maxSpan: 1 << 40 };
          const wants = layout(parts);
          const plan = planReads(wants, model);
          checkCovers(wants, plan);
          const best = bruteForce(wants, model);
          const cost = planCost(model, plan.requests, plan.bytes);
          if ((model.objective ?? "latency") === "latency") {
            expect([plan.requests, plan.bytes]).toEqual([best.requests, best.bytes]);
            expect(cost).toBeLessThanOrEqual(best.cost * (1 + LATENCY_SLACK) + 1e-9);
          } else {
            expect(cost).toBeCloseTo(best.cost, 6);
          }
        },
      ),
      { numRuns: 300, seed: 12 },
    );
  });

  it("never builds a read longer than maxSpan from several ranges, and stays within the brute-force optimum's neighbourhood", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ gap: fc.integer({ min: 1, max: 256 * KiB }), length: fc.integer({ min: 1, max: 300 * KiB }) }),
          { minLength: 1, maxLength: 10 },
        ),
        (parts) => {
          const model = { ...REMOTE_COST, maxSpan: 512 * KiB };
          const wants = layout(parts);
          const plan = planReads(wants, model);
          checkCovers(wants, plan);
          for (const g of plan.groups) if (g.wants.length > 1) expect(g.length).toBeLessThanOrEqual(512 * KiB);
          const cost = planCost(model, plan.requests, plan.bytes);
          const best = bruteForce(wants, model).cost;
          expect(cost).toBeGreaterThanOrEqual(best - 1e-9);
          expect(cost).toBeLessThanOrEqual(best * 1.5);
        },
      ),
      { numRuns: 200, seed: 13 },
    );
  });

  it("reads overlapping and touching wants once, in one read", () => {
    const wants: RangeWant<string>[] = [
      { offset: 100, length: 50, item: "a" },
      { offset: 120, length: 10, item: "b" },
      { offset: 150, length: 5, item: "c" },
      { offset: 100, length: 50, item: "a again" },
    ];
    const plan = planReads(wants, LOCAL_COST);
    expect(plan.groups).toHaveLength(1);
    expect(plan.groups[0]).toMatchObject({ offset: 100, length: 55 });
    expect(plan.groups[0]!.wants.map((w) => w.item).sort()).toEqual(["a", "a again", "b", "c"]);
  });

  it("sparse batch: exact reads on a slow shared link, merged reads where requests cost more than gaps", () => {
    const r = rng(5);
    // 1,000 entries of 1-8 KiB, a few hundred KiB apart (a sparse pick from a big archive).
    const wants = layout(
      Array.from({ length: 1000 }, () => ({
        gap: Math.floor(r() * 900 * KiB),
        length: KiB + Math.floor(r() * 7 * KiB),
      })),
    );
    const needed = wants.reduce((s, w) => s + w.length, 0);
    const link = planReads(wants, { ...REMOTE_COST, linkBytesPerMs: 12_500 });
    checkCovers(wants, link);
    expect(link.bytes).toBeLessThan(needed * 1.5);
    const wideModel = { ...REMOTE_COST, maxConcurrency: 1000, requestCpuMs: 0 };
    const wide = planReads(wants, wideModel);
    // Every read can run in parallel and requests cost the client nothing: merging buys little, so few bytes are added.
    expect(wide.bytes).toBeLessThan(needed * 3);
    expect(wide.wallMs).toBeLessThanOrEqual(estimateWallMs(wideModel, 1000, needed) * (1 + LATENCY_SLACK));
    const few = planReads(wants, { ...REMOTE_COST, maxConcurrency: 8 });
    expect(few.requests).toBeLessThan(500); // eight lanes: a 25 ms request costs more than a few hundred KiB
    expect(few.wallMs).toBeLessThan(estimateWallMs({ ...REMOTE_COST, maxConcurrency: 8 }, 1000, needed));
  });

  it("dense batch on a fast link: one read per concurrency lane, not per entry", () => {
    const r = rng(6);
    const wants = layout(
      Array.from({ length: 1000 }, () => ({ gap: Math.floor(r() * 50 * KiB), length: 16 + Math.floor(r() * 496) })),
    );
    // No shared link: per-connection bandwidth only.
    const fast: CostModel = {
      firstByteMs: 25,
      bytesPerMs: 90_000,
      maxConcurrency: 64,
      maxInflightBytes: 64 << 20,
      maxSpan: 8 << 20,
    };
    const plan = planReads(wants, fast);
    checkCovers(wants, plan);
    expect(plan.requests).toBeLessThanOrEqual(100);
    expect(plan.concurrency).toBe(Math.min(fast.maxConcurrency, plan.requests));
    // The default model's 1 Gbit/s client link makes merged gaps cost: more reads, far fewer bytes.
    const shipped = planReads(wants, REMOTE_COST);
    expect(shipped.requests).toBeGreaterThan(plan.requests);
    expect(shipped.bytes).toBeLessThan(plan.bytes);
  });

  it("the requests objective reads fewer times than the latency objective, weights in between", () => {
    const r = rng(7);
    const wants = layout(Array.from({ length: 2000 }, () => ({ gap: Math.floor(r() * 2 * MiB), length: 4 * KiB })));
    const lat = planReads(wants, REMOTE_COST);
    const req = planReads(wants, { ...REMOTE_COST, objective: "requests" });
    expect(req.requests).toBeLessThan(lat.requests);
    for (const g of req.groups) if (g.wants.length > 1) expect(g.length).toBeLessThanOrEqual(REMOTE_COST.maxSpan);
  });

  it("a per-request client cost: the estimate pays it per read, and the planner merges more", () => {
    const noCpu: CostModel = { ...REMOTE_COST, linkBytesPerMs: 40_000, requestCpuMs: 0 };
    const cpu: CostModel = { ...noCpu, requestCpuMs: 0.5 };
    // 1,000 reads of 4 KB: 64 lanes need 16 rounds of 25 ms; the client alone needs 1,000 x 0.5 ms + one latency.
    expect(estimateWallMs(noCpu, 1000, 4_000_000)).toBeCloseTo((1000 * 25 + 4_000_000 / 90_000) / 64, 6);
    expect(estimateWallMs(cpu, 1000, 4_000_000)).toBeCloseTo(1000 * 0.5 + 25, 6);
    // The client's own byte rate adds to its per-request time.
    expect(estimateWallMs({ ...cpu, clientBytesPerMs: 100_000 }, 1000, 4_000_000)).toBeCloseTo(1000 * 0.5 + 40 + 25, 6);
    // Without requestCpuMs the old estimate holds exactly.
    const { requestCpuMs: _drop, ...plain } = noCpu;
    expect(estimateWallMs(plain, 1000, 4_000_000)).toBe(estimateWallMs(noCpu, 1000, 4_000_000));
    const r = rng(9);
    const wants = layout(
      Array.from({ length: 1000 }, () => ({
        gap: Math.floor(r() * 100 * KiB),
        length: KiB + Math.floor(r() * 7 * KiB),
      })),
    );
    const without = planReads(wants, noCpu);
    const withCpu = planReads(wants, cpu);
    checkCovers(wants, withCpu);
    expect(withCpu.requests).toBeLessThan(without.requests);
    expect(withCpu.bytes).toBeGreaterThan(without.bytes);
    // Each plan is the better one under its own model.
    expect(withCpu.wallMs).toBeLessThan(estimateWallMs(cpu, without.requests, without.bytes));
    expect(without.wallMs).toBeLessThanOrEqual(
      estimateWallMs(noCpu, withCpu.requests, withCpu.bytes) * (1 + LATENCY_SLACK),
    );
  });

  it("chooseStep: the cheapest step outside latency; under latency the least reads x bytes within the slack", () => {
    // Steps of a sweep: reads fall, bytes grow. All but step 3 are within the slack of step 2 (the cheapest).
    const at = (f: number): number => 100 * (1 + LATENCY_SLACK * f);
    const costs = [at(0.8), at(0.6), 100, at(2), at(0.2)];
    const reads = [10, 8, 6, 4, 2];
    const sizes = [1000, 1100, 2000, 2100, 9000];
    // reads x bytes: 10,000, 8,800, 12,000, (8,400, too slow), 18,000.
    expect(chooseStep(costs, sizes, reads, "latency")).toBe(1);
    expect(chooseStep(costs, sizes, reads, undefined)).toBe(1);
    expect(chooseStep(costs, sizes, reads, "requests")).toBe(2);
    expect(chooseStep(costs, sizes, reads, { perRequest: 1, perByte: 0, perMs: 0 })).toBe(2);
    // Just past the slack is too slow, whatever it saves.
    expect(chooseStep([100, at(1.01)], [1000, 1], [10, 1], "latency")).toBe(0);
    // Ties in reads x bytes go to fewer reads; a single step is its own pick.
    expect(chooseStep([100, 100], [1000, 2000], [2, 1], "latency")).toBe(1);
    expect(chooseStep([5], [7], [1], "latency")).toBe(0);
  });

  it("latency rule: a sparse batch stays near its wanted bytes, a dense one merges to few reads", () => {
    const r = rng(11);
    // The benchmark's sparse shape: 1,000 of 1-8 KiB, ~460 KiB apart; the client pays 0.5 ms a request.
    const model: CostModel = {
      ...REMOTE_COST,
      firstByteMs: 20,
      linkBytesPerMs: Infinity,
      requestCpuMs: 0.5,
      clientBytesPerMs: 190_000,
    };
    const sparse = layout(
      Array.from({ length: 1000 }, () => ({
        gap: Math.floor(-Math.log(1 - r()) * 460 * KiB),
        length: KiB + Math.floor(r() * 7 * KiB),
      })),
    );
    const needed = sparse.reduce((s, w) => s + w.length, 0);
    const plan = planReads(sparse, model);
    checkCovers(sparse, plan);
    // The least wall time of any plan: merge the j smallest gaps, for every j.
    const gaps = sparse.slice(1).map((w, i) => w.offset - sparse[i]!.offset - sparse[i]!.length);
    gaps.sort((a, b) => a - b);
    let bytes = needed;
    let fastest = { ms: estimateWallMs(model, 1000, bytes), bytes };
    gaps.forEach((g, j) => {
      bytes += g;
      const ms = estimateWallMs(model, 999 - j, bytes);
      if (ms < fastest.ms) fastest = { ms, bytes };
    });
    expect(plan.wallMs).toBeLessThanOrEqual(fastest.ms * (1 + LATENCY_SLACK));
    // The fastest plan merges the gaps under ~95 KiB (0.5 ms of client time each); the rule reads less than it.
    expect(fastest.bytes).toBeGreaterThan(needed * 2);
    expect(plan.bytes).toBeLessThan(needed * 2);
    expect(planReads(sparse, { ...model, objective: "requests" }).bytes).toBeGreaterThan(needed * 10);
    const dense = layout(
      Array.from({ length: 1000 }, () => ({ gap: Math.floor(r() * 50 * KiB), length: 16 + Math.floor(r() * 496) })),
    );
    const densePlan = planReads(dense, model);
    checkCovers(dense, densePlan);
    expect(densePlan.requests).toBeLessThanOrEqual(10);
  });

  it("concurrency: no more reads than fit in the in-flight budget together, and a runner sees exactly that many", async () => {
    // 41 reads of ~6.3 MB under a 64 MiB budget: the cap of 64 is not what limits them.
    const groups = Array.from({ length: 41 }, (_, i) => ({ offset: i * 10 * MiB, length: 6_300_000 + i * 1000 }));
    const model: CostModel = { ...REMOTE_COST, maxConcurrency: 64, maxInflightBytes: 64 * MiB };
    expect(concurrencyOf(groups, model)).toBe(10);
    expect(concurrencyOf(groups, { ...model, maxConcurrency: 4 })).toBe(4);
    expect(concurrencyOf(groups, { ...model, maxInflightBytes: 1000 })).toBe(1);
    expect(concurrencyOf(groups.slice(0, 3), model)).toBe(3);
    // A plan of such ranges reports it.
    const wants = groups.map((g, i) => ({ ...g, item: i }));
    const plan = planReads(wants, { ...model, maxSpan: 8 * MiB });
    expect(plan.requests).toBe(41);
    expect(plan.concurrency).toBe(10);
    // Run with the budget, the reads in flight never exceed it and reach it.
    let running = 0;
    let peak = 0;
    await runBounded(
      plan.groups,
      64,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 1));
        running--;
      },
      undefined,
      model.maxInflightBytes,
    );
    expect(peak).toBe(plan.concurrency);
  });

  it("plans 100,000 ranges", () => {
    const r = rng(8);
    const wants = layout(
      Array.from({ length: 100_000 }, () => ({
        gap: Math.floor(r() * 64 * KiB),
        length: 1 + Math.floor(r() * 8 * KiB),
      })),
    );
    const plan = planReads(wants, REMOTE_COST);
    checkCovers(wants, plan);
    expect(plan.requests).toBeGreaterThan(0);
    expect(planReads([], REMOTE_COST)).toMatchObject({ groups: [], requests: 0, bytes: 0, wallMs: 0 });
  });
});
