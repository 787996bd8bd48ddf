import { DesAbortedError, throwIfAborted } from "./errors.js";

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
 */
export function sliceWant<T>(group: RangeGroup<T>, bytes: Uint8Array, want: RangeWant<T>): Uint8Array {
  const at = want.offset - group.offset;
  const view = bytes.subarray(at, at + want.length);
  // new Uint8Array(view) copies even when the view is a Buffer (whose slice() does not).
  return want.length * 2 < bytes.length ? new Uint8Array(view) : view;
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight, yielding each
 * result as it completes. The first failure stops new work, aborts the
 * signal handed to running tasks, and is rethrown.
 */
export async function* runConcurrent<I, R>(
  items: readonly I[],
  concurrency: number,
  task: (item: I, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): AsyncGenerator<R> {
  throwIfAborted(signal);
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const limit = Math.max(1, Math.floor(concurrency));
  const running = new Map<number, Promise<{ id: number; ok: true; value: R } | { id: number; ok: false; error: unknown }>>();
  let next = 0;
  const launch = (): void => {
    const id = next++;
    const p = task(items[id]!, inner.signal).then(
      (value) => ({ id, ok: true as const, value }),
      (error: unknown) => ({ id, ok: false as const, error }),
    );
    running.set(id, p);
  };
  try {
    while (next < items.length && running.size < limit) launch();
    while (running.size > 0) {
      const done = await Promise.race(running.values());
      running.delete(done.id);
      if (!done.ok) {
        if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
        throw done.error;
      }
      if (next < items.length) launch();
      yield done.value;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (running.size > 0) {
      inner.abort(new DesAbortedError("a sibling read failed"));
      // Let in-flight tasks settle so none rejects unobserved.
      await Promise.allSettled(running.values());
    }
  }
}

/** Runs `task` over all items with bounded concurrency; resolves when all succeed. */
export async function runAll<I>(
  items: readonly I[],
  concurrency: number,
  task: (item: I, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  for await (const _ of runConcurrent(items, concurrency, task, signal)) {
    // results are delivered by the task itself
  }
}
