import { coalesceRanges, runBounded } from "./coalesce.js";
import { planReads } from "./plan.js";
import type { CostModel } from "../io/cost.js";
import type { RangeGroup, RangeWant } from "./coalesce.js";
import { DesAbortedError } from "../errors.js";
import { onAbort } from "./abort.js";
import { readInto } from "../io/source.js";
import { BATCH_MIN, readBatched } from "./batched-reads.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import type { CostLearner } from "../io/learn.js";

/** What a reader has asked of its source, for tests, benchmarks and capacity planning. */
export interface IoStats {
  /** Reads issued to the source (identical concurrent reads count once). */
  requests: number;
  /** Bytes those reads returned. */
  bytes: number;
}

/**
 * How one batch is read: overrides of the reader's hints for one call. A
 * `maxGap` or `maxSpan` asks for the fixed coalescing rule; otherwise, when
 * the reader has a cost model, the batch is planned by cost.
 */
export type BatchHints = Partial<Omit<ReadHints, "cost">> & { readonly costOverrides?: Partial<CostModel> };

/** A reader's learning of its cost model: where observations go, and what it must never replace. */
export interface Learning {
  readonly learner: CostLearner;
  /** Cost fields the reader set itself (`cost`, `concurrency`): a learned value never replaces them. */
  readonly pinned: ReadonlySet<keyof CostModel>;
}

/** The last bytes of an archive as its source returned them. */
export interface TailRead {
  readonly bytes: Uint8Array;
  readonly size: number;
  /** The source's version token (ETag, file identity), when it has one. */
  readonly version: string | undefined;
}

/** One read in flight, shared by every caller that asked for the same range meanwhile. */
interface SharedRead {
  readonly promise: Promise<Uint8Array>;
  /** Absent when the first caller had no signal: the read then always runs to the end. */
  readonly controller: AbortController | undefined;
  /** Callers still waiting; a caller without a signal never stops waiting. */
  waiters: number;
}

/**
 * The reader's only path to its source: identical in-flight ranges share one
 * read, every read is counted, batches are coalesced by the hints.
 */
export class Fetcher {
  // Assigned in the constructor (no field initializers): one function less to compile on a first open.
  declare readonly source: RangeSource;
  declare readonly hints: ReadHints;
  declare readonly stats: IoStats;
  declare private readonly inflight: Map<string, SharedRead>;
  /** The bytes read at open; any read inside them costs no request. */
  declare private tail: { bytes: Uint8Array; start: number } | undefined;
  /** The version (ETag) the tail was read from; every later read is pinned to it. */
  declare private version: string | undefined;

  /** Learning of the cost model from the reads below, when on (a cost model and no fixed rule). */
  declare readonly learning: Learning | undefined;

  constructor(source: RangeSource, hints: ReadHints, learning?: Learning) {
    this.source = source;
    this.hints = hints;
    this.stats = { requests: 0, bytes: 0 };
    this.inflight = new Map();
    this.tail = undefined;
    this.version = undefined;
    this.learning = hints.cost ? learning : undefined;
  }

  /**
   * The model a batch with these hints is planned by: the reader's, with
   * what was learned in place of the fields neither the reader nor the call
   * pinned, then the call's overrides. Undefined when the batch uses the
   * fixed rule.
   */
  costModel(hints: BatchHints = {}): CostModel | undefined {
    const base = this.hints.cost;
    if (!base || hints.maxGap !== undefined || hints.maxSpan !== undefined) return undefined;
    const learned: Partial<CostModel> = {};
    if (this.learning) {
      const fit = this.learning.learner.fitted(base);
      for (const k of Object.keys(fit) as (keyof typeof fit)[])
        if (!this.learning.pinned.has(k)) (learned as Record<string, unknown>)[k] = fit[k];
    }
    return {
      ...base,
      ...learned,
      ...hints.costOverrides,
      ...(hints.concurrency !== undefined ? { maxConcurrency: hints.concurrency } : {}),
    };
  }

  /** A source read, timed for the learner when learning is on. */
  private fromSource(offset: number, length: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    if (!this.learning) return this.source.read(offset, length, signal, this.version);
    const t = this.learning.learner.begin(length);
    let reading: Promise<Uint8Array>;
    try {
      reading = this.source.read(offset, length, signal, this.version);
    } catch (e) {
      t.end(); // a read that throws at once is in flight no more
      throw e;
    }
    return reading.then(
      (bytes) => {
        t.end(bytes.length);
        return bytes;
      },
      (e: unknown) => {
        t.end();
        throw e;
      },
    );
  }

  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const inTail = this.fromTail(offset, length);
    if (inTail) return Promise.resolve(inTail);
    if (signal?.aborted) return Promise.reject(new DesAbortedError(undefined, { cause: signal.reason }));
    const key = `${offset}:${length}`;
    let shared = this.inflight.get(key);
    if (!shared) {
      // The shared read has its own signal: one caller giving up must not fail
      // the others waiting on the same bytes. It is aborted only when every
      // caller has, so a read started by a caller without a signal (who never
      // gives up) needs no controller at all.
      const controller = signal ? new AbortController() : undefined;
      this.stats.requests++;
      const promise = this.fromSource(offset, length, controller?.signal).then(
        (bytes) => {
          if (this.inflight.get(key) === entry) this.inflight.delete(key);
          this.stats.bytes += bytes.length;
          return bytes;
        },
        (e: unknown) => {
          if (this.inflight.get(key) === entry) this.inflight.delete(key);
          throw e;
        },
      );
      // Callers that all aborted leave no one to observe the rejection.
      promise.catch(() => undefined);
      const entry: SharedRead = { promise, controller, waiters: 0 };
      shared = entry;
      this.inflight.set(key, entry);
    }
    shared.waiters++;
    return signal ? this.follow(shared, key, signal) : shared.promise;
  }

  /** A caller with a signal waits on a shared read; leaving aborts the read only when every caller has left. */
  private follow(s: SharedRead, key: string, signal: AbortSignal): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      let left = false;
      const off = onAbort(signal, () => {
        left = true;
        s.waiters--;
        if (s.waiters === 0) {
          if (this.inflight.get(key) === s) this.inflight.delete(key);
          s.controller?.abort(signal.reason);
        }
        reject(new DesAbortedError(undefined, { cause: signal.reason }));
      });
      s.promise.then(
        (bytes) => {
          off();
          if (!left) resolve(bytes);
        },
        (e: unknown) => {
          off();
          if (!left) reject(e);
        },
      );
    });
  }

  /**
   * The bytes at once when they are in the tail or the source reads on the
   * calling thread (`RangeSource.readSync`), pinned and counted like `read`;
   * undefined otherwise (use `read`). Not shared: nothing waits, so there is
   * nothing in flight to share.
   */
  readSync(offset: number, length: number): Uint8Array | undefined {
    const inTail = this.fromTail(offset, length);
    if (inTail) return inTail;
    const source = this.source;
    if (source.readSync === undefined) return undefined;
    const bytes = source.readSync(offset, length, this.version);
    if (bytes !== undefined) {
      this.stats.requests++;
      this.stats.bytes += bytes.length;
    }
    return bytes;
  }

  /**
   * `target.length` bytes at `offset` into `target` (the caller's memory),
   * pinned and counted like `read`; not shared with other callers' reads.
   */
  async readInto(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    const inTail = this.fromTail(offset, target.length);
    if (inTail) {
      target.set(inTail);
      return;
    }
    if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
    this.stats.requests++;
    const t = this.learning?.learner.begin(target.length);
    let done = false;
    try {
      await readInto(this.source, offset, target, signal, this.version);
      done = true;
    } finally {
      t?.end(done ? target.length : undefined);
    }
    this.stats.bytes += target.length;
  }

  /** The bytes of a range inside the tail read at open (no request), or undefined. */
  fromTail(offset: number, length: number): Uint8Array | undefined {
    const t = this.tail;
    if (!t || offset < t.start || offset + length > t.start + t.bytes.length) return undefined;
    return t.bytes.subarray(offset - t.start, offset - t.start + length);
  }

  /** Reads the tail from the source (one request); `adopt` it to serve reads inside it. */
  async readTail(length: number, signal?: AbortSignal): Promise<TailRead> {
    this.stats.requests++;
    const t = this.learning?.learner.begin(length);
    let tail;
    try {
      tail = await this.source.readTail(length, signal);
    } finally {
      t?.end(tail?.bytes.length);
    }
    this.stats.bytes += tail.bytes.length;
    return { bytes: tail.bytes, size: tail.size, version: tail.version };
  }

  /** Serves reads inside `tail` without a request and pins every later read to its version. */
  adopt(tail: TailRead): void {
    this.tail = { bytes: tail.bytes, start: tail.size - tail.bytes.length };
    this.version = tail.version;
  }

  /** The version token every read of this opening is pinned to. */
  get pinnedVersion(): string | undefined {
    return this.version;
  }

  /**
   * Coalesces wants into groups and reads them concurrently, handing each
   * group to `onGroup` as it arrives. A callback rather than an async
   * iterator: on a local disk a batch is thousands of small groups, and an
   * iterator costs a promise hop for every one of them.
   */
  async readGroups<T>(
    wants: readonly RangeWant<T>[],
    signal: AbortSignal | undefined,
    hints: BatchHints,
    onGroup: (group: RangeGroup<T>, bytes: Uint8Array) => void,
  ): Promise<void> {
    let { groups, concurrency, budget } = this.plan(wants, hints);
    if (this.learning && !this.learning.learner.ready && groups.length >= PROBE_MIN && !this.source.readMany) {
      // A big batch and nothing learned yet: a first wave as planned, then the rest planned with what it showed.
      const wave = groups.slice(0, PROBE_GROUPS);
      const read = async (group: RangeGroup<T>, inner: AbortSignal | undefined): Promise<void> =>
        onGroup(group, await this.read(group.offset, group.length, inner));
      await runBounded(wave, Math.min(concurrency, wave.length), read, signal, budget);
      ({ groups, concurrency, budget } = this.plan(
        groups.slice(PROBE_GROUPS).flatMap((g) => g.wants),
        hints,
      ));
    }
    if (groups.length === 1) {
      // One read (a single `get`): no scheduler, no second abort controller.
      const g = groups[0]!;
      onGroup(g, await this.read(g.offset, g.length, signal));
      return;
    }
    if (this.source.readMany && groups.length >= BATCH_MIN) {
      await readBatched(this, groups, signal, onGroup, budget);
      return;
    }
    await runBounded(
      groups,
      concurrency,
      async (group, inner) => onGroup(group, await this.read(group.offset, group.length, inner)),
      signal,
      budget,
    );
  }

  /**
   * The reads for a batch: by cost when the reader has a model and the call
   * does not ask for the fixed rule, else merged by maxGap / maxSpan.
   */
  private plan<T>(
    wants: readonly RangeWant<T>[],
    hints: BatchHints,
  ): { groups: RangeGroup<T>[]; concurrency: number; budget: number | undefined } {
    const model = this.costModel(hints);
    if (!model) {
      const h = { ...this.hints, ...hints };
      return { groups: coalesceRanges(wants, h.maxGap, h.maxSpan), concurrency: h.concurrency, budget: undefined };
    }
    const p = planReads(wants, model);
    return { groups: p.groups, concurrency: p.concurrency, budget: model.maxInflightBytes };
  }
}

/**
 * A planned batch of at least PROBE_MIN reads, while the learner has not
 * seen enough reads, starts with its first PROBE_GROUPS reads alone and
 * plans the rest after them.
 */
const PROBE_MIN = 64;
const PROBE_GROUPS = 16;
