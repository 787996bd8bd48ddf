import type { CostModel } from "./cost.js";

/**
 * Learning a source's cost model from the reads a reader makes of it
 * (docs/performance.md, "The learned model"). `fitCost` is the pure part:
 * observations in, the fields they justify out. `CostLearner` keeps the last
 * observations in a ring of fixed size and refits on demand.
 */

/** One completed range read, as the reader saw it. */
export interface ReadObservation {
  /** Bytes the read returned. */
  readonly bytes: number;
  /** From sending the request to the last byte, ms. */
  readonly totalMs: number;
  /** From sending the request to the first byte, ms, when the source reports it. */
  readonly firstByteMs?: number;
  /**
   * Reads of the same medium in flight with this one, itself included (>= 1):
   * the most at any moment of its life.
   */
  readonly inFlight: number;
  /**
   * Bytes of the reads in flight with this one, itself included (the
   * largest sum at any moment of its life), when known; absent:
   * `inFlight x bytes`.
   */
  readonly bytesInFlight?: number;
  /**
   * Time from the previous completion of a read of the medium (or from this
   * read's start, when later) to this one's completion, ms, when known: under
   * a limit all reads share, the time each read costs that limit.
   */
  readonly intervalMs?: number;
}

/** The fields `fitCost` may set: what timings of reads tell about a medium. */
export type LearnedCost = Partial<Pick<CostModel, "firstByteMs" | "bytesPerMs" | "requestCpuMs" | "clientBytesPerMs">>;

/** Thresholds of the fit; the defaults are documented in docs/performance.md. */
export interface LearnOptions {
  /** Valid observations needed before anything is learned. Default 16. */
  readonly minSamples?: number;
  /** Observations kept (the most recent). Default 512. */
  readonly window?: number;
}

export const LEARN_MIN_SAMPLES = 16;
export const LEARN_WINDOW = 512;
/** At most this many in flight: a read that shared nothing, so its time is latency plus transfer. */
const QUIET_MAX = 2;
/** Quiet reads needed for the latency, big reads needed for a rate, busy reads needed for the per-request cost. */
const MIN_QUIET = 8;
const MIN_BIG = 4;
/**
 * Big reads that shared the medium needed for an aggregate rate: three, as
 * one wave of the fixed rule's 8 MiB spans over a 25 MB region gives (three
 * 8 MiB reads and a small one). Their median still ignores one outlier.
 */
const MIN_BIG_SHARED = 3;
const MIN_BUSY = 8;
/** At least this many in flight: a read that shared the client and the store with others. */
const BUSY_MIN = 4;
/** A read at least this long is long enough for its transfer time to be measured. */
const BIG_BYTES = 256 << 10;
/** A big read with at least this many times its own bytes in flight (its own included) shared the medium. */
const SHARED = 2;
/** A busy read this much slower than latency plus transfer waited for something shared. */
const QUEUED = 1.25;
/** An aggregate rate below this share of what the connections in flight could carry is a limit. */
const BINDING = 0.8;

function median(xs: number[]): number {
  xs.sort((a, b) => a - b);
  const m = xs.length >> 1;
  return xs.length % 2 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2;
}

/** The mean of `xs` without its highest tenth (idle gaps, pauses). */
function trimmedMean(xs: number[]): number {
  xs.sort((a, b) => a - b);
  const keep = xs.length - Math.floor(xs.length / 10);
  let sum = 0;
  for (let i = 0; i < keep; i++) sum += xs[i]!;
  return sum / keep;
}

const valid = (o: ReadObservation): boolean =>
  Number.isFinite(o.bytes) &&
  o.bytes >= 0 &&
  Number.isFinite(o.totalMs) &&
  o.totalMs >= 0 &&
  Number.isFinite(o.inFlight) &&
  o.inFlight >= 1 &&
  (o.firstByteMs === undefined ||
    (Number.isFinite(o.firstByteMs) && o.firstByteMs >= 0 && o.firstByteMs <= o.totalMs)) &&
  (o.bytesInFlight === undefined || (Number.isFinite(o.bytesInFlight) && o.bytesInFlight >= o.bytes)) &&
  (o.intervalMs === undefined || (Number.isFinite(o.intervalMs) && o.intervalMs >= 0 && o.intervalMs <= o.totalMs));

/**
 * The cost fields the observations justify, on top of `base` (the model in
 * force: a field not learned keeps its value there). The estimates are
 * medians (the per-request cost a mean without its highest tenth), so
 * outliers (a retry, a GC pause, a cold connection) barely move them; a
 * field is returned only when enough observations of its kind exist:
 *
 * - `firstByteMs`: the median time to first byte of quiet reads (at most
 *   2 in flight), or, when the source does not report it, of their total
 *   time less their transfer at `base.bytesPerMs`. Needs 8 quiet reads.
 * - `bytesPerMs`: the median rate of quiet reads of at least 256 KiB, their
 *   transfer time being total less first byte. Needs 4.
 * - `clientBytesPerMs`: of reads of at least 256 KiB that were busy (4 or
 *   more in flight at their start) or had at least twice their own bytes in
 *   flight (`bytesInFlight`, theirs included: the first read of a wave),
 *   the median aggregate rate `bytesInFlight / transfer time`, when it is
 *   below 80% of what that many connections (`bytesInFlight / bytes`)
 *   carry at `bytesPerMs` (a limit all connections share). Needs 3.
 * - `requestCpuMs`: of busy reads under 256 KiB at half the peak
 *   concurrency or more, the mean (without its highest tenth) of the wall
 *   time each one took: the time since the previous completion
 *   (`intervalMs`; `totalMs / inFlight` when absent, by Little's law), less
 *   its bytes at the learned aggregate rate. Under a limit every read shares
 *   (a server answering one request at a time, a starved client) reads
 *   complete one such interval apart. Only reads that waited (25% slower
 *   than latency plus transfer) count with their interval; one that did not
 *   is no evidence, and counts with `base.requestCpuMs`. Needs 8.
 *
 * Nothing is returned before `minSamples` valid observations.
 */
export function fitCost(
  observations: readonly ReadObservation[],
  base: CostModel,
  opts: Pick<LearnOptions, "minSamples"> = {},
): LearnedCost {
  const obs = observations.filter(valid);
  if (obs.length < (opts.minSamples ?? LEARN_MIN_SAMPLES)) return {};
  const out: { -readonly [K in keyof LearnedCost]: LearnedCost[K] } = {};
  const quiet = obs.filter((o) => o.inFlight <= QUIET_MAX);
  const busy = obs.filter((o) => o.inFlight >= BUSY_MIN);

  let latency = base.firstByteMs;
  if (quiet.length >= MIN_QUIET) {
    latency = median(quiet.map((o) => o.firstByteMs ?? Math.max(0, o.totalMs - o.bytes / base.bytesPerMs)));
    out.firstByteMs = latency;
  }
  const transfer = (o: ReadObservation): number => o.totalMs - (o.firstByteMs ?? latency);

  let rate = base.bytesPerMs;
  const bigQuiet = quiet.filter((o) => o.bytes >= BIG_BYTES && transfer(o) > 0);
  if (bigQuiet.length >= MIN_BIG) {
    rate = median(bigQuiet.map((o) => o.bytes / transfer(o)));
    out.bytesPerMs = rate;
  }

  let aggregate = base.clientBytesPerMs ?? Infinity;
  // Big reads that shared the medium with others for their whole transfer: the bytes in flight beside them
  // (not the count of reads at their start, which is 1 for the first of a wave) say how many shared it.
  const sharedBytes = (o: ReadObservation): number => o.bytesInFlight ?? o.inFlight * o.bytes;
  const bigBusy = obs.filter(
    (o) => o.bytes >= BIG_BYTES && transfer(o) > 0 && (o.inFlight >= BUSY_MIN || sharedBytes(o) >= SHARED * o.bytes),
  );
  if (bigBusy.length >= MIN_BIG_SHARED) {
    const agg = median(bigBusy.map((o) => sharedBytes(o) / transfer(o)));
    const lanes = median(bigBusy.map((o) => sharedBytes(o) / o.bytes));
    if (agg < BINDING * lanes * rate) {
      aggregate = agg;
      out.clientBytesPerMs = agg;
    }
  }

  // The per-request cost shows best where most reads were in flight: keep the busy reads at half the peak or more.
  let peak = 0;
  for (const o of busy) if (o.inFlight > peak) peak = o.inFlight;
  const small = busy.filter((o) => o.bytes < BIG_BYTES && o.inFlight * 2 >= peak);
  if (small.length >= MIN_BUSY) {
    const baseCpu = base.requestCpuMs ?? 0;
    const shares = small.map((o) => {
      const each = o.intervalMs ?? o.totalMs / o.inFlight;
      const share = Math.max(0, each - o.bytes / aggregate);
      const waited = o.totalMs > QUEUED * (latency + o.bytes / rate);
      return waited ? share : baseCpu;
    });
    out.requestCpuMs = trimmedMean(shares);
  }
  return out;
}

/**
 * The observations of one source (or of several that share a medium), the
 * last `window` of them, and the model they fit. `record` is O(1); `fitted`
 * refits only after new observations.
 */
export class CostLearner {
  private readonly ring: ReadObservation[] = [];
  private next = 0;
  private total = 0;
  private active = 0;
  private activeBytes = 0;
  /** The peaks of the reads in flight, each raised by the reads that begin after it. */
  private readonly open = new Set<{ reads: number; bytes: number }>();
  private lastEnd = -Infinity;
  private readonly window: number;
  private readonly minSamples: number;
  private cache: { base: CostModel; at: number; fit: LearnedCost } | undefined;

  constructor(opts: LearnOptions = {}) {
    this.window = Math.max(1, Math.floor(opts.window ?? LEARN_WINDOW));
    this.minSamples = Math.max(1, Math.floor(opts.minSamples ?? LEARN_MIN_SAMPLES));
  }

  /** Observations recorded so far (including those the window has dropped). */
  get samples(): number {
    return this.total;
  }

  /** Whether enough reads were recorded for `fitted` to return anything. */
  get ready(): boolean {
    return this.total >= this.minSamples;
  }

  record(o: ReadObservation): void {
    if (!valid(o)) return;
    if (this.ring.length < this.window) this.ring.push(o);
    else this.ring[this.next] = o;
    this.next = (this.next + 1) % this.window;
    this.total++;
  }

  /** The fields learned so far over `base` (empty before `minSamples` observations). */
  fitted(base: CostModel): LearnedCost {
    if (this.total < this.minSamples) return {};
    const c = this.cache;
    if (c && c.base === base && c.at === this.total) return c.fit;
    const fit = fitCost(this.ring, base, { minSamples: this.minSamples });
    this.cache = { base, at: this.total, fit };
    return fit;
  }

  /**
   * Marks a read of `expectedBytes` as started (it counts as in flight from now); call `end`
   * with its byte count when it has completed, or with no argument when it
   * failed (a failed read is not an observation).
   */
  begin(expectedBytes = 0): { end(bytes?: number): void } {
    const start = performance.now();
    this.active++;
    this.activeBytes += expectedBytes;
    // The most in flight over this read's life: raised by every read that begins while it is open (the
    // first read of a wave starts alone and may end alone, yet shared the medium with the whole wave).
    const peak = { reads: this.active, bytes: this.activeBytes };
    for (const p of this.open) {
      if (this.active > p.reads) p.reads = this.active;
      if (this.activeBytes > p.bytes) p.bytes = this.activeBytes;
    }
    this.open.add(peak);
    let open = true;
    return {
      end: (bytes?: number) => {
        if (!open) return;
        open = false;
        this.open.delete(peak);
        const inFlight = peak.reads;
        const bytesInFlight = peak.bytes;
        this.active--;
        this.activeBytes -= expectedBytes;
        if (bytes === undefined) return;
        const now = performance.now();
        const intervalMs = now - Math.max(start, this.lastEnd);
        this.lastEnd = now;
        const o: ReadObservation = { bytes, totalMs: now - start, inFlight, intervalMs };
        this.record(expectedBytes === bytes ? { ...o, bytesInFlight } : o);
      },
    };
  }

  /** Forgets every observation (the medium changed: a new network, a new endpoint). */
  reset(): void {
    this.ring.length = 0;
    this.next = 0;
    this.total = 0;
    this.cache = undefined;
  }
}
