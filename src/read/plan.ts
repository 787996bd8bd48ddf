import type { CostModel } from "../io/cost.js";
import type { RangeGroup, RangeWant } from "./coalesce.js";

/** A batch's reads and how many run at once, with what the model expects of them. */
export interface ReadPlan<T> {
  /** Sorted by offset; each group is one read. */
  readonly groups: RangeGroup<T>[];
  /**
   * Most reads in flight at once: the model's cap, and no more than fit in
   * `maxInflightBytes` together (the runner starts a read only while it fits
   * with those in flight), so at most the count of the smallest groups whose
   * lengths sum within the budget; at least 1.
   */
  readonly concurrency: number;
  readonly requests: number;
  /** Bytes the groups read (wanted bytes plus the gaps merged over). */
  readonly bytes: number;
  /** The model's estimate of the batch's wall time, ms. */
  readonly wallMs: number;
}

/**
 * The model's wall time for `requests` reads moving `bytes` in total.
 *
 * Reads spread over `lanes` connections: as many as the model allows, as
 * there are reads, and as fit the in-flight budget with reads of the average
 * size. Each connection pays one first-byte latency per read and moves its
 * share of the bytes at the per-connection rate; a shared link moves all the
 * bytes at its rate after one latency. The client handles the requests and
 * their bytes one after another (`requestCpuMs` per request, `clientBytesPerMs`
 * for the bytes), after at least one latency. The wall time is the slowest of
 * the three.
 *
 * It depends only on the number of reads and their total bytes, and never
 * decreases when bytes grow with the count fixed: that is what makes the
 * planner below exact.
 */
export function estimateWallMs(model: CostModel, requests: number, bytes: number): number {
  if (requests === 0) return 0;
  const budgetLanes = bytes > 0 ? Math.floor((model.maxInflightBytes * requests) / bytes) : requests;
  const lanes = Math.max(1, Math.min(model.maxConcurrency, requests, budgetLanes));
  const perConnection = (requests * model.firstByteMs + bytes / model.bytesPerMs) / lanes;
  const link = model.linkBytesPerMs ? model.firstByteMs + bytes / model.linkBytesPerMs : 0;
  const cpu =
    model.requestCpuMs || model.clientBytesPerMs
      ? requests * (model.requestCpuMs ?? 0) +
        (model.clientBytesPerMs ? bytes / model.clientBytesPerMs : 0) +
        model.firstByteMs
      : 0;
  return Math.max(perConnection, link, cpu);
}

/** The value the planner minimises for a plan of `requests` reads and `bytes` bytes. */
export function planCost(model: CostModel, requests: number, bytes: number): number {
  const objective = model.objective ?? "latency";
  const wall = estimateWallMs(model, requests, bytes);
  if (objective === "latency") return wall;
  // Fewest reads first; the wall time (under 1e9 ms) only breaks ties.
  if (objective === "requests") return requests * 1e9 + wall;
  return objective.perRequest * requests + objective.perByte * bytes + objective.perMs * wall;
}

/**
 * Wanted ranges that overlap, or touch within `maxSpan`, merged: reading them
 * together costs nothing extra. Touching ranges past `maxSpan` stay apart
 * (the bodies of a packed archive all touch: one atom would be the whole batch).
 */
interface Atom<T> {
  readonly start: number;
  end: number;
  readonly wants: RangeWant<T>[];
}

function atomsOf<T>(wants: readonly RangeWant<T>[], maxSpan: number): Atom<T>[] {
  let inOrder = true;
  for (let i = 1; i < wants.length && inOrder; i++) {
    const a = wants[i - 1]!;
    const b = wants[i]!;
    inOrder = a.offset < b.offset || (a.offset === b.offset && a.length <= b.length);
  }
  const sorted = inOrder ? wants : [...wants].sort((a, b) => a.offset - b.offset || a.length - b.length);
  const atoms: Atom<T>[] = [];
  let cur: Atom<T> | undefined;
  for (const w of sorted) {
    const end = w.offset + w.length;
    if (cur && (w.offset < cur.end || (w.offset === cur.end && end - cur.start <= maxSpan))) {
      cur.wants.push(w);
      if (end > cur.end) cur.end = end;
      continue;
    }
    cur = { start: w.offset, end, wants: [w] };
    atoms.push(cur);
  }
  return atoms;
}

/**
 * Chooses which neighbouring ranges to merge into one read, minimising
 * `planCost` under `model`; under the default `latency` objective, of the
 * plans whose estimated wall time is within LATENCY_SLACK of the least, the
 * one with the least reads x bytes (see `chooseStep`). O(n log n) for n
 * ranges (one sort of the gaps, then a linear sweep).
 *
 * Why it is exact: for any plan, the cost is a function of its read count
 * k and its bytes, nondecreasing in bytes for a fixed k (see
 * `estimateWallMs`). A plan of k reads over m + 1 disjoint ranges leaves
 * k - 1 gaps unmerged and reads the wanted bytes plus the other gaps; its
 * bytes are smallest when the merged gaps are the m - k + 1 smallest. So the
 * optimum is among the m + 1 plans "merge the j smallest gaps", and the
 * sweep evaluates each of them. The same holds for the latency rule: of
 * the plans of k reads, the one of fewest bytes has both the least wall
 * time (so it is within the slack whenever any plan of k reads is) and the
 * least k x bytes. `maxSpan` is the one constraint outside this argument: a
 * merge that would build a read longer than it is skipped, and the plan is
 * then the best of the sweep rather than a proven optimum.
 */
export function planReads<T>(wants: readonly RangeWant<T>[], model: CostModel): ReadPlan<T> {
  const atoms = atomsOf(wants, model.maxSpan);
  const n = atoms.length;
  if (n === 0) return { groups: [], concurrency: 1, requests: 0, bytes: 0, wallMs: 0 };
  let bytes = 0;
  for (const a of atoms) bytes += a.end - a.start;
  const gaps = new Float64Array(n - 1);
  for (let i = 0; i + 1 < n; i++) gaps[i] = atoms[i + 1]!.start - atoms[i]!.end;
  const order = sortedGapIndexes(gaps);

  // Groups are runs of atoms; a run is known by its first and last atom.
  const first = new Int32Array(n);
  const last = new Int32Array(n);
  for (let i = 0; i < n; i++) first[i] = last[i] = i;
  let requests = n;
  const costs = [planCost(model, requests, bytes)];
  const sizes = [bytes];
  const reads = [requests];
  const merged: number[] = [];
  for (let k = 0; k < order.length; k++) {
    const g = order[k]!;
    // Gap g lies between atom g (last of its run) and atom g + 1 (first of its run).
    const lo = first[g]!;
    const hi = last[g + 1]!;
    if (atoms[hi]!.end - atoms[lo]!.start > model.maxSpan) continue;
    last[lo] = hi;
    first[hi] = lo;
    requests--;
    bytes += gaps[g]!;
    merged.push(g);
    costs.push(planCost(model, requests, bytes));
    sizes.push(bytes);
    reads.push(requests);
  }
  const bestStep = chooseStep(costs, sizes, reads, model.objective);
  const join = new Uint8Array(Math.max(0, n - 1));
  for (let i = 0; i < bestStep; i++) join[merged[i]!] = 1;
  return buildPlan(atoms, join, model);
}

/**
 * Slack of the latency objective: plans whose estimated wall time is within
 * LATENCY_SLACK of the least are taken as equally fast (the model is not
 * finer than that), and among them the planner keeps the one using the
 * least of the two things a read spends besides time: requests (client CPU,
 * server operations, request charges) and bytes (memory in the client, the
 * client's link, transfer charges). No exchange rate between the two holds
 * for every caller, so the rule weighs them by relative change: it keeps the
 * least `requests x bytes`, i.e. 1% fewer reads is worth 1% more bytes and
 * no more. A sparse batch then stays close to its wanted bytes (a merged
 * gap there adds far more bytes, relatively, than it saves reads), a dense
 * batch merges down to a few reads (there a merged gap adds few bytes).
 * The slack is small because the estimate's error is not symmetric: the
 * client's time per request grows under load beyond `requestCpuMs`, so a
 * plan of more reads is the one whose estimate is the more optimistic.
 */
export const LATENCY_SLACK = 0.02;

/**
 * The sweep step to keep: the cheapest; under `latency`, of the steps
 * within the slack of the cheapest, the least reads x bytes (ties: fewer
 * reads). Pure: `costs[k]`, `sizes[k]` and `reads[k]` describe step k.
 */
export function chooseStep(
  costs: ArrayLike<number>,
  sizes: ArrayLike<number>,
  reads: ArrayLike<number>,
  objective: CostModel["objective"],
): number {
  let best = 0;
  for (let k = 1; k < costs.length; k++) if (costs[k]! < costs[best]!) best = k;
  if ((objective ?? "latency") !== "latency") return best;
  const limit = costs[best]! * (1 + LATENCY_SLACK);
  let pick = best;
  let pickUse = reads[best]! * sizes[best]!;
  for (let k = 0; k < costs.length; k++) {
    if (costs[k]! > limit) continue;
    const use = reads[k]! * sizes[k]!;
    if (use < pickUse || (use === pickUse && reads[k]! < reads[pick]!)) {
      pick = k;
      pickUse = use;
    }
  }
  return pick;
}

/**
 * Indexes of `gaps`, smallest gap first (ties by index). Packs gap and index
 * into one float and sorts a typed array (a numeric sort, no comparator
 * calls) whenever that is exact; a comparator sort otherwise.
 */
function sortedGapIndexes(gaps: Float64Array): ArrayLike<number> {
  const m = gaps.length;
  const bits = Math.max(1, Math.ceil(Math.log2(m + 1)));
  let maxGap = 0;
  for (let i = 0; i < m; i++) if (gaps[i]! > maxGap) maxGap = gaps[i]!;
  if (maxGap * 2 ** bits >= Number.MAX_SAFE_INTEGER) {
    return Array.from({ length: m }, (_, i) => i).sort((a, b) => gaps[a]! - gaps[b]! || a - b);
  }
  const scale = 2 ** bits;
  const keys = new Float64Array(m);
  for (let i = 0; i < m; i++) keys[i] = gaps[i]! * scale + i;
  keys.sort();
  const order = new Uint32Array(m);
  for (let i = 0; i < m; i++) order[i] = keys[i]! % scale;
  return order;
}

/**
 * How many of `groups` can be in flight at once: at most `maxConcurrency`,
 * and no more than the smallest groups whose lengths fit in
 * `maxInflightBytes` together (any set in flight fits in the budget, or is
 * one read alone). Sorts the lengths only when the budget can bind.
 */
export function concurrencyOf(groups: readonly { readonly length: number }[], model: CostModel): number {
  const cap = Math.max(1, Math.min(model.maxConcurrency, groups.length));
  let total = 0;
  for (const g of groups) total += g.length;
  if (total <= model.maxInflightBytes) return cap;
  const lengths = Float64Array.from(groups, (g) => g.length).sort();
  let fit = 0;
  let sum = 0;
  while (fit < cap && sum + lengths[fit]! <= model.maxInflightBytes) sum += lengths[fit++]!;
  return Math.max(1, fit);
}

/** Groups from atoms and the gaps to merge over, with the model's figures for them. */
function buildPlan<T>(atoms: readonly Atom<T>[], join: Uint8Array, model: CostModel): ReadPlan<T> {
  const groups: RangeGroup<T>[] = [];
  let bytes = 0;
  let i = 0;
  while (i < atoms.length) {
    let j = i;
    while (j + 1 < atoms.length && join[j] === 1) j++;
    const wants: RangeWant<T>[] = [];
    for (let k = i; k <= j; k++) for (const w of atoms[k]!.wants) wants.push(w);
    const offset = atoms[i]!.start;
    const length = atoms[j]!.end - offset;
    groups.push({ offset, length, wants });
    bytes += length;
    i = j + 1;
  }
  const requests = groups.length;
  return {
    groups,
    concurrency: concurrencyOf(groups, model),
    requests,
    bytes,
    wallMs: estimateWallMs(model, requests, bytes),
  };
}
