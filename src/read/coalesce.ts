import { DesAbortedError, throwIfAborted } from "../errors.js";
import { onAbort } from "./abort.js";

/** One wanted byte range and what it is for. */
export interface RangeWant<T> {
  readonly offset: number;
  readonly length: number;
  readonly item: T;
}

/** One read that serves several wants. */
export interface RangeGroup<T> {
  readonly offset: number;
  readonly length: number;
  readonly wants: readonly RangeWant<T>[];
}

/**
 * Sorts wants by offset and merges neighbours whose gap is at most `maxGap`,
 * never letting a merged read grow past `maxSpan` (a single want longer than
 * that is read alone). Overlapping wants (the same entry twice) share a read.
 */
export function coalesceRanges<T>(wants: readonly RangeWant<T>[], maxGap: number, maxSpan: number): RangeGroup<T>[] {
  const sorted = [...wants].sort((a, b) => a.offset - b.offset || a.length - b.length);
  const groups: RangeGroup<T>[] = [];
  let start = 0;
  let end = 0;
  let members: RangeWant<T>[] = [];
  for (const w of sorted) {
    const wEnd = w.offset + w.length;
    if (members.length > 0 && w.offset - end <= maxGap && Math.max(end, wEnd) - start <= maxSpan) {
      members.push(w);
      end = Math.max(end, wEnd);
      continue;
    }
    if (members.length > 0) groups.push({ offset: start, length: end - start, wants: members });
    members = [w];
    start = w.offset;
    end = wEnd;
  }
  if (members.length > 0) groups.push({ offset: start, length: end - start, wants: members });
  return groups;
}

/**
 * The slice of a group's bytes that one want asked for. A small slice of a
 * big merged read is copied out: returning a view would keep the whole
 * read (up to maxSpan) alive for as long as the caller holds one entry.
 * With a `slab`, small copies are carved from its shared blocks instead of
 * each getting a buffer of its own.
 */
export function sliceWant<T>(group: RangeGroup<T>, bytes: Uint8Array, want: RangeWant<T>, slab?: Slab): Uint8Array {
  const at = want.offset - group.offset;
  const view = bytes.subarray(at, at + want.length);
  if (want.length * 2 >= bytes.length) return view;
  // Allocate and set rather than new Uint8Array(view): the same copy, several
  // times faster in a fresh process (and a Buffer's own slice() would not copy).
  const copy = slab ? slab.take(want.length) : new Uint8Array(want.length);
  copy.set(view);
  return copy;
}

/** Blocks of this size are shared by the small copies of one batch. */
const SLAB_BYTES = 64 << 10;
/** Copies up to this size are carved from a block; bigger ones get their own buffer. */
const SLAB_MAX_TAKE = 8 << 10;

/**
 * Memory for the many small copies of one batch (thousands of bodies of a
 * few hundred bytes): a buffer of its own for each is an allocation, a
 * backing store and later a collection each, which cost more than reading
 * the body. A slab hands out views of 64 KiB blocks instead, one after the
 * other. A view keeps its block alive, so a caller that holds one entry of
 * a batch holds at most 64 KiB, and a block only ever holds bodies of the
 * same batch (never bytes of another reader or of anything else).
 */
export class Slab {
  private block: ArrayBuffer | undefined;
  private used = 0;

  take(n: number): Uint8Array {
    if (n > SLAB_MAX_TAKE) return new Uint8Array(n);
    if (!this.block || this.used + n > SLAB_BYTES) {
      this.block = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const view = new Uint8Array(this.block, this.used, n);
    this.used += n;
    return view;
  }
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight; each task
 * delivers its own result. With `budget`, items (ranges) also wait until
 * their lengths fit in it with those in flight (one alone always runs). The
 * first failure stops new work, aborts the signal handed to running tasks,
 * waits for them to settle (none rejects unobserved) and is rethrown.
 */
export function runBounded<I>(
  items: readonly I[],
  concurrency: number,
  task: (item: I, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
  budget?: number,
): Promise<void> {
  throwIfAborted(signal);
  if (items.length === 0) return Promise.resolve();
  const inner = new AbortController();
  const unfollow = signal ? onAbort(signal, () => inner.abort(signal.reason)) : undefined;
  const limit = Math.min(items.length, Math.max(1, Math.floor(concurrency)));
  let next = 0;
  let running = 0;
  let inflight = 0;
  const weight = (item: I): number => (budget === undefined ? 0 : ((item as { length?: number }).length ?? 0));
  let failure: { error: unknown } | undefined;
  return new Promise<void>((resolve, reject) => {
    const settle = (): void => {
      if (running > 0 || (next < items.length && !failure)) return;
      unfollow?.();
      if (!failure) resolve();
      else if (signal?.aborted) reject(new DesAbortedError(undefined, { cause: signal.reason }));
      else reject(failure.error);
    };
    const launch = (): void => {
      while (!failure && running < limit && next < items.length) {
        const w = weight(items[next]!);
        if (budget !== undefined && running > 0 && inflight + w > budget) break;
        const item = items[next++]!;
        running++;
        inflight += w;
        task(item, inner.signal).then(
          () => {
            running--;
            inflight -= w;
            launch();
            settle();
          },
          (error: unknown) => {
            running--;
            inflight -= w;
            if (!failure) {
              failure = { error };
              inner.abort(new DesAbortedError("a sibling read failed"));
            }
            settle();
          },
        );
      }
    };
    launch();
  });
}
