/*
 * The page encoder of the one v2 index builder (sections 3.4 and 3.5): writes
 * the pages `planV2Index` laid out, each record encoded once into its page
 * (or copied as its bytes, for a source that holds them), each page closed
 * by its checksum. Only `index-builder.ts` calls it.
 */
import { DesInvalidArgumentError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import { writeV2Record } from "./page.js";
import type { IndexRecordSource } from "./index-builder.js";
import { runWithin } from "../runs.js";

/** Pages are written to chunks of about this size when they must be sorted. */
const CHUNK_BYTES = 1 << 20;

/** Everything the page encoders need: the source, each record's page and size (0: dropped), each page's count and size. */
export interface Layout {
  readonly source: IndexRecordSource;
  readonly pageOf: Uint32Array;
  readonly counts: Uint32Array;
  readonly pageLengths: Uint32Array;
  readonly recLen: Uint32Array;
  readonly total: number;
  readonly compare: (a: number, b: number) => number;
  /** The source's `pageOrderBits`, while its keys agreed with the names' hashes. */
  readonly pageOrderBits: number | undefined;
}

/** Counting sort of the live records by page, stable (each page's records stay in index order). */
export function bucketize(
  n: number,
  P: number,
  pageOf: (i: number) => number,
  recLen: Uint32Array,
): { count: number; members(p: number): Uint32Array } {
  const starts = new Uint32Array(P + 1);
  for (let i = 0; i < n; i++) if (recLen[i] !== 0) starts[pageOf(i) + 1]!++;
  for (let p = 0; p < P; p++) starts[p + 1]! += starts[p]!;
  const order = new Uint32Array(starts[P]!);
  const fill = starts.slice(0, P);
  for (let i = 0; i < n; i++) if (recLen[i] !== 0) order[fill[pageOf(i)]!++] = i;
  return { count: P, members: (p) => order.subarray(starts[p]!, starts[p + 1]!) };
}

/** The members in name order; equal names keep index order (the sort is stable). */
export function sortByName(members: Uint32Array, compare: (a: number, b: number) => number): ArrayLike<number> {
  for (let k = 1; k < members.length; k++) {
    if (compare(members[k - 1]!, members[k]!) >= 0) return Array.from(members).sort(compare);
  }
  return members;
}

/** Writes record i at `o`: its raw bytes as they are, or its input encoded; returns the offset after it. */
function putRecord(source: IndexRecordSource, buf: Uint8Array, view: DataView, o: number, i: number): number {
  if ((source.rawLength?.(i) ?? 0) === 0) return writeV2Record(buf, view, o, source.at(i));
  return source.copyRaw!(i, buf, o);
}

/** Pages from `start` on that fit together in `limit` bytes (at least one page): where they end and their size. */
function pageGroup(pageLengths: Uint32Array, start: number, limit: number): { end: number; size: number } {
  const { end, total } = runWithin(start, pageLengths.length, limit, (i) => pageLengths[i]!);
  return { end, size: total };
}

function writePageEnd(
  buf: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  page: number,
  expected: number,
): void {
  if (end !== start + expected - 8) {
    throw new DesInvalidArgumentError(
      `index page ${page}: its records encoded to ${end - start + 8} bytes, not the ${expected} they were sized at (the record source changed during the build)`,
    );
  }
  view.setBigUint64(end, xxh64(buf.subarray(start, end)), true);
}

/**
 * Records in name order by index: each page's records are in index order.
 * Groups of pages (about 1/8 of the index, at least 1 MiB) are encoded in
 * one pass over the records each, so the source is read in order, where a
 * pass per page would read it nearly at random.
 */
function* ascendingChunks(l: Layout): Generator<Uint8Array> {
  const { source, pageOf, counts, pageLengths, recLen, total, compare } = l;
  const n = source.count;
  const P = pageLengths.length;
  const groupBytes = Math.max(CHUNK_BYTES, Math.ceil(total / 8));
  const cursor = new Float64Array(P);
  const last = new Int32Array(P);
  for (let g0 = 0; g0 < P;) {
    const { end: g1, size } = pageGroup(pageLengths, g0, groupBytes);
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    for (let p = g0, at = 0; p < g1; at += pageLengths[p++]!) {
      view.setUint32(at, counts[p]!, true);
      cursor[p] = at + 4;
      last[p] = -1;
    }
    for (let i = 0; i < n; i++) {
      const p = pageOf[i]!;
      if (p < g0 || p >= g1 || recLen[i] === 0) continue;
      const prev = last[p]!;
      if (prev >= 0 && compare(prev, i) >= 0)
        throw new DesInvalidArgumentError(
          "the record source said ascending, but its names are not in strictly ascending byte order",
        );
      last[p] = i;
      cursor[p] = putRecord(source, buf, view, cursor[p]!, i);
    }
    for (let p = g0, at = 0; p < g1; at += pageLengths[p++]!)
      writePageEnd(buf, view, at, cursor[p]!, p, pageLengths[p]!);
    yield buf;
    g0 = g1;
  }
}

/** Records in any order: bucketed by page, each page sorted by name, pages written about 1 MiB at a time. */
function* sortedChunks(l: Layout): Generator<Uint8Array> {
  const { source, pageOf, pageLengths, recLen, compare } = l;
  const P = pageLengths.length;
  const buckets = bucketize(source.count, P, (i) => pageOf[i]!, recLen);
  // Each new page is a run of one page of the source's order (or all of it), in index order: in order already.
  const inOrder = l.pageOrderBits !== undefined && P >= 2 ** l.pageOrderBits;
  let p = 0;
  while (p < P) {
    const { end, size } = pageGroup(pageLengths, p, CHUNK_BYTES);
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    for (let at = 0; p < end; at += pageLengths[p++]!) {
      const members = inOrder ? buckets.members(p) : sortByName(buckets.members(p), compare);
      view.setUint32(at, members.length, true);
      let o = at + 4;
      for (let k = 0; k < members.length; k++) o = putRecord(source, buf, view, o, members[k]!);
      writePageEnd(buf, view, at, o, p, pageLengths[p]!);
    }
    yield buf;
  }
}

/** The pages' bytes, in chunks of about 1 MiB or more (fresh buffers). */
export function pageChunks(l: Layout, ascending: boolean): Generator<Uint8Array> {
  return ascending ? ascendingChunks(l) : sortedChunks(l);
}
