import { compareBytes } from "../bytes.js";
import { DesDuplicateError, DesInvalidArgumentError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import { MAX_PAGE_BITS, MAX_PAGE_BYTES, PAGE_OVERHEAD, TARGET_PAGE_BYTES } from "../constants.js";
import { encodeRoot } from "./footer.js";
import { v2RecordLength, writeV2Record } from "./page.js";
import type { V2RecordInput } from "./page.js";

/**
 * Where the index builder reads records from: anything that can answer
 * "how many" and "record i". Nothing is materialised per record, so a
 * writer's column table of millions of entries, a decoded older generation
 * plus new entries, or a plain array all feed the same builder.
 *
 * `at(i)` may return the same object refilled on every call (a cursor); the
 * builder reads each returned record completely before it calls `at` again,
 * and never keeps it. It must return the same field values every time it is
 * asked for the same `i`, for as long as the build runs.
 */
export interface IndexRecordSource {
  readonly count: number;
  at(i: number): V2RecordInput;
  /**
   * The top 32 bits of xxh64(name of record i), when the source already
   * knows it (the writer hashed every name on add). Without it the builder
   * hashes each name once.
   */
  nameKey?(i: number): number;
  /** Unsigned bytewise comparison of the names of records a and b, when the source can do it without a view per call. */
  compareNames?(a: number, b: number): number;
}

export interface IndexBuildOptions {
  /**
   * The source's records are in strictly ascending name-byte order by
   * index: pages then need no sort and are encoded in a few sequential
   * passes. Checked as the pages are encoded (a source that is not in order
   * is refused with DesInvalidArgumentError).
   */
  readonly ascending?: boolean;
  /**
   * What two records with the same name mean:
   * - "error" (default): DesDuplicateError;
   * - "last": the record with the higher index wins, the others are dropped
   *   (append: feed generation n's live records, then the new records and
   *   tombstones, and a re-added or deleted name replaces the older record);
   * - "unique": the caller guarantees there are none (the writer's table
   *   refuses duplicates as they are added), so nothing is checked.
   */
  readonly duplicates?: "error" | "last" | "unique";
}

/** A built index (section 3.4): its layout is fixed, its bytes are produced on demand. */
export interface V2IndexPlan {
  /** The footer's page_bits. */
  readonly pageBits: number;
  /** Byte length of every page, in page order (what the root records). */
  readonly pageLengths: Uint32Array;
  /** Records written (tombstones included; dropped duplicates excluded): the footer's entry_count. */
  readonly entryCount: number;
  /** Pages plus root: the footer's index_length. */
  readonly indexLength: number;
  /** xxh64 of the root: the footer's root_xxh64. */
  readonly rootHash: bigint;
  /**
   * The index bytes, pages then root, in chunks of about 1 MiB or more.
   * Every chunk is a fresh buffer: the caller may keep it. Reads the source
   * again, so it must not change until the iteration ends.
   */
  chunks(): Generator<Uint8Array>;
}

/** Minimal sources: an array of records (tests, small indexes, merging by hand). */
export function recordsOf(records: readonly V2RecordInput[]): IndexRecordSource {
  return {
    count: records.length,
    at: (i) => records[i]!,
    compareNames: (a, b) => compareBytes(records[a]!.name, records[b]!.name),
  };
}

/** The whole index as one buffer (pages then root). */
export function indexBytes(plan: V2IndexPlan): Uint8Array {
  const out = new Uint8Array(plan.indexLength);
  let at = 0;
  for (const c of plan.chunks()) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Pages are written to chunks of about this size when they must be sorted. */
const CHUNK_BYTES = 1 << 20;

/**
 * Plans the v2 index of `source` (sections 3.4 and 3.5): the records go to
 * page `xxh64(name) >> (64 - page_bits)`, sorted by name bytes inside their
 * page; `page_bits` is the smallest, from `ceil(log2(bytes / 32 KiB))` up,
 * for which no page holding two or more records passes 65,536 bytes (at most
 * 24). Records are sized without being encoded; each is encoded once, into
 * its page, when `chunks()` runs. Pure: no I/O. Needs `loadHasher()` to
 * have been awaited (record, page and root checksums).
 */
export function planV2Index(source: IndexRecordSource, opts: IndexBuildOptions = {}): V2IndexPlan {
  const n = source.count;
  const duplicates = opts.duplicates ?? "error";
  const keyOf = source.nameKey ? source.nameKey.bind(source) : (i: number): number => Number(xxh64(source.at(i).name) >> 32n);
  const keys = new Uint32Array(n);
  const recLen = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    keys[i] = keyOf(i);
    const l = v2RecordLength(source.at(i));
    recLen[i] = l;
    total += l;
  }
  const compare = source.compareNames ? source.compareNames.bind(source) : namesComparator(source);
  const ascending = opts.ascending === true;
  // Dropped records (duplicates superseded under "last") get length 0 and are skipped.
  let live = n;
  if (duplicates !== "unique" && !ascending && n > 1) {
    const estimate = bitsFor(total);
    const shift = 32 - estimate;
    const buckets = bucketize(n, 2 ** estimate, (i) => (estimate === 0 ? 0 : keys[i]! >>> shift), recLen);
    for (let p = 0; p < buckets.count; p++) {
      const members = sortByName(buckets.members(p), compare);
      for (let k = 1; k < members.length; k++) {
        const a = members[k - 1]!;
        const b = members[k]!;
        if (compare(a, b) !== 0) continue;
        if (duplicates === "error") throw new DesDuplicateError(nameText(source.at(b).name));
        // Equal names sort by index, so b (later) supersedes a.
        total -= recLen[a]!;
        recLen[a] = 0;
        live--;
      }
    }
  }
  let bits = bitsFor(total);
  let sizes = pageSizes(keys, recLen, bits);
  while (!sizes.fits && bits < MAX_PAGE_BITS) sizes = pageSizes(keys, recLen, ++bits);
  const pageLengths = sizes.bytes;
  const root = encodeRoot(Array.from(pageLengths));
  const rootHash = xxh64(root);
  let indexLength = root.length;
  for (const l of pageLengths) indexLength += l;
  const pageBits = bits;
  const pageOf = sizes.pageOf;
  return {
    pageBits,
    pageLengths,
    entryCount: live,
    indexLength,
    rootHash,
    *chunks() {
      if (ascending) yield* ascendingChunks(source, pageOf, sizes.counts, pageLengths, recLen, total, compare);
      else yield* sortedChunks(source, pageOf, pageLengths, recLen, compare);
      yield root;
    },
  };
}

/** The first page_bits to try: pages averaging at most TARGET_PAGE_BYTES. */
function bitsFor(total: number): number {
  return total <= TARGET_PAGE_BYTES ? 0 : Math.min(MAX_PAGE_BITS, Math.ceil(Math.log2(total / TARGET_PAGE_BYTES)));
}

function pageSizes(keys: Uint32Array, recLen: Uint32Array, bits: number): { pageOf: Uint32Array; bytes: Uint32Array; counts: Uint32Array; fits: boolean } {
  const P = 2 ** bits;
  const n = keys.length;
  const bytes = new Float64Array(P).fill(PAGE_OVERHEAD);
  const counts = new Uint32Array(P);
  const pageOf = new Uint32Array(n);
  const shift = 32 - bits;
  for (let i = 0; i < n; i++) {
    // keys are the top 32 bits of the name hash: the page is their top page_bits.
    const p = bits === 0 ? 0 : keys[i]! >>> shift;
    pageOf[i] = p;
    if (recLen[i] === 0) continue;
    bytes[p] = bytes[p]! + recLen[i]!;
    counts[p] = counts[p]! + 1;
  }
  let fits = true;
  for (let p = 0; p < P; p++) if (bytes[p]! > MAX_PAGE_BYTES && counts[p]! > 1) fits = false;
  // A page is at most one record over 64 KiB, and a record is at most ~65.6 KB: u32 holds it.
  return { pageOf, bytes: Uint32Array.from(bytes), counts, fits };
}

/** Counting sort of the live records by page, stable (each page's records stay in index order). */
function bucketize(n: number, P: number, pageOf: (i: number) => number, recLen: Uint32Array): { count: number; members(p: number): Uint32Array } {
  const starts = new Uint32Array(P + 1);
  for (let i = 0; i < n; i++) if (recLen[i] !== 0) starts[pageOf(i) + 1]!++;
  for (let p = 0; p < P; p++) starts[p + 1]! += starts[p]!;
  const order = new Uint32Array(starts[P]!);
  const fill = starts.slice(0, P);
  for (let i = 0; i < n; i++) if (recLen[i] !== 0) order[fill[pageOf(i)]!++] = i;
  return { count: P, members: (p) => order.subarray(starts[p]!, starts[p + 1]!) };
}

/** The members in name order; equal names keep index order (the sort is stable). */
function sortByName(members: Uint32Array, compare: (a: number, b: number) => number): ArrayLike<number> {
  for (let k = 1; k < members.length; k++) {
    if (compare(members[k - 1]!, members[k]!) >= 0) return Array.from(members).sort(compare);
  }
  return members;
}

/** Name comparison for a source without one: each name is read through `at` and copied, as `at` may reuse its record. */
function namesComparator(source: IndexRecordSource): (a: number, b: number) => number {
  let lastI = -1;
  let lastName = new Uint8Array(0);
  return (a, b) => {
    if (a !== lastI) {
      lastName = source.at(a).name.slice();
      lastI = a;
    }
    return compareBytes(lastName, source.at(b).name);
  };
}

function nameText(name: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(name);
}

function writePageEnd(buf: Uint8Array, view: DataView, start: number, end: number, page: number, expected: number): void {
  if (end !== start + expected - 8) {
    throw new DesInvalidArgumentError(`index page ${page}: its records encoded to ${end - start + 8} bytes, not the ${expected} they were sized at (the record source changed during the build)`);
  }
  view.setBigUint64(end, xxh64(buf.subarray(start, end)), true);
}

/**
 * Records in name order by index: each page's records are in index order.
 * Groups of pages (about 1/8 of the index, at least 1 MiB) are encoded in
 * one pass over the records each, so the source is read in order, where a
 * pass per page would read it nearly at random.
 */
function* ascendingChunks(
  source: IndexRecordSource,
  pageOf: Uint32Array,
  counts: Uint32Array,
  pageLengths: Uint32Array,
  recLen: Uint32Array,
  total: number,
  compare: (a: number, b: number) => number,
): Generator<Uint8Array> {
  const n = source.count;
  const P = pageLengths.length;
  const groupBytes = Math.max(CHUNK_BYTES, Math.ceil(total / 8));
  const cursor = new Float64Array(P);
  const last = new Int32Array(P);
  for (let g0 = 0; g0 < P; ) {
    let g1 = g0;
    let size = 0;
    while (g1 < P && (g1 === g0 || size + pageLengths[g1]! <= groupBytes)) size += pageLengths[g1++]!;
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
      if (prev >= 0 && compare(prev, i) >= 0) throw new DesInvalidArgumentError("the record source said ascending, but its names are not in strictly ascending byte order");
      last[p] = i;
      cursor[p] = writeV2Record(buf, view, cursor[p]!, source.at(i));
    }
    for (let p = g0, at = 0; p < g1; at += pageLengths[p++]!) writePageEnd(buf, view, at, cursor[p]!, p, pageLengths[p]!);
    yield buf;
    g0 = g1;
  }
}

/** Records in any order: bucketed by page, each page sorted by name, pages written about 1 MiB at a time. */
function* sortedChunks(
  source: IndexRecordSource,
  pageOf: Uint32Array,
  pageLengths: Uint32Array,
  recLen: Uint32Array,
  compare: (a: number, b: number) => number,
): Generator<Uint8Array> {
  const P = pageLengths.length;
  const buckets = bucketize(source.count, P, (i) => pageOf[i]!, recLen);
  let p = 0;
  while (p < P) {
    let end = p;
    let size = 0;
    while (end < P && (end === p || size + pageLengths[end]! <= CHUNK_BYTES)) size += pageLengths[end++]!;
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    for (let at = 0; p < end; at += pageLengths[p++]!) {
      const members = sortByName(buckets.members(p), compare);
      view.setUint32(at, members.length, true);
      let o = at + 4;
      for (let k = 0; k < members.length; k++) o = writeV2Record(buf, view, o, source.at(members[k]!));
      writePageEnd(buf, view, at, o, p, pageLengths[p]!);
    }
    yield buf;
  }
}
