import type { CacheLink } from "./cache-link.js";
import type { Opening } from "./opening.js";

/** What `warm()` stored. */
export interface WarmReport {
  /** Index ranges (v1: the index; v2: pages) of the archive. */
  readonly ranges: number;
  /** Of those, the ranges inside the tail (cached as part of it, not under their own key). */
  readonly inTail: number;
  /** Bytes of the index ranges. */
  readonly bytes: number;
}

/**
 * Stores the tail and every index range of `o` in the cache behind `link`,
 * reading the ranges in coalesced batches of `per`.
 */
export async function warmOpening(
  o: Opening,
  link: CacheLink,
  per: number,
  signal: AbortSignal | undefined,
): Promise<WarmReport> {
  link.putTail({ bytes: o.tail.bytes, size: o.tail.size, version: o.version });
  const ranges = o.index.indexRanges();
  let bytes = 0;
  let inTail = 0;
  for (const r of ranges) if (o.fetcher.fromTail(r.offset, r.length)) inTail++;
  for (let i = 0; i < ranges.length; i += per) {
    for (const b of await o.bytes.load(ranges.slice(i, i + per), signal)) bytes += b.length;
  }
  await link.flush();
  return { ranges: ranges.length, inTail, bytes };
}
