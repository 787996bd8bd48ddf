import { DesIoError } from "../errors.js";
import type { RangeSource } from "../io/source.js";
import type { RangeGroup } from "./coalesce.js";
import type { IoStats } from "./fetcher.js";

/** Fewer groups than this go one read each (the batch path has a fixed cost per call). */
export const BATCH_MIN = 8;
const BATCH_FIRST = 64;
const BATCH_GROUPS = 256;
const BATCH_BYTES = 4 << 20;

/** What the batch path needs of a reader's fetcher. */
export interface BatchedReadsOf {
  readonly source: RangeSource;
  readonly stats: IoStats;
  readonly pinnedVersion: string | undefined;
  fromTail(offset: number, length: number): Uint8Array | undefined;
}

/**
 * Many groups through `source.readMany`, two batches in flight so decoding
 * overlaps reading; with a `budget` (maxInflightBytes) a batch holds at most
 * half of it, and the next batch is read ahead only when both fit in it.
 * Groups inside the tail read at open cost no request.
 */
export async function readBatched<T>(
  f: BatchedReadsOf,
  groups: readonly RangeGroup<T>[],
  signal: AbortSignal | undefined,
  onGroup: (group: RangeGroup<T>, bytes: Uint8Array) => void,
  budget?: number,
): Promise<void> {
  const rest: RangeGroup<T>[] = [];
  for (const g of groups) {
    const inTail = f.fromTail(g.offset, g.length);
    if (inTail) onGroup(g, inTail);
    else rest.push(g);
  }
  const batches = batchesOf(
    rest,
    budget === undefined ? BATCH_BYTES : Math.max(1, Math.min(BATCH_BYTES, Math.floor(budget / 2))),
  );
  const bytesOf = (b: readonly RangeGroup<T>[] | undefined): number => (b ? b.reduce((n, g) => n + g.length, 0) : 0);
  const fits = (a: readonly RangeGroup<T>[] | undefined, b: readonly RangeGroup<T>[] | undefined): boolean =>
    budget === undefined || bytesOf(a) + bytesOf(b) <= budget;
  const version = f.pinnedVersion;
  const read = (b: RangeGroup<T>[]): Promise<Uint8Array[]> => {
    const p = f.source.readMany!(b, signal, version);
    // Observed now, awaited later: a read failing while an earlier one is awaited must not count as unhandled.
    p.catch(() => undefined);
    return p;
  };
  let now = batches[0] ? read(batches[0]) : undefined;
  let ahead = batches[1] && fits(batches[0], batches[1]) ? read(batches[1]) : undefined;
  for (let k = 0; k < batches.length; k++) {
    const results = await now!;
    // Batch k + 1 (already ahead, or started now), and k + 2 ahead of it when both fit in the budget.
    now = ahead ?? (batches[k + 1] ? read(batches[k + 1]!) : undefined);
    ahead = batches[k + 2] && fits(batches[k + 1], batches[k + 2]) ? read(batches[k + 2]!) : undefined;
    const done = batches[k]!;
    f.stats.requests += done.length;
    for (let i = 0; i < done.length; i++) {
      const g = done[i]!;
      const r = results[i]!;
      if (r.length !== g.length)
        throw new DesIoError(`${f.source.key}: batch read at ${g.offset} returned ${r.length} of ${g.length} bytes`);
      f.stats.bytes += r.length;
      onGroup(g, r);
    }
  }
}

/**
 * Splits groups for `source.readMany`: at most BATCH_GROUPS groups or
 * BATCH_BYTES bytes a batch, the first one smaller so the caller starts
 * decoding early.
 */
function batchesOf<T>(groups: readonly RangeGroup<T>[], maxBytes: number): RangeGroup<T>[][] {
  const out: RangeGroup<T>[][] = [];
  let batch: RangeGroup<T>[] = [];
  let bytes = 0;
  let limit = BATCH_FIRST;
  for (const g of groups) {
    if (batch.length > 0 && (batch.length >= limit || bytes + g.length > maxBytes)) {
      out.push(batch);
      batch = [];
      bytes = 0;
      limit = BATCH_GROUPS;
    }
    batch.push(g);
    bytes += g.length;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
