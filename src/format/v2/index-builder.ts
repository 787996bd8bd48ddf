import { compareBytes, utf8Encode } from "../bytes.js";
import { DesDuplicateError, DesInvalidArgumentError, DesUnsupportedError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import {
  FLAG_COMPRESSED,
  MAX_PAGE_BITS,
  MAX_PAGE_BYTES,
  PAGE_OVERHEAD,
  TARGET_PAGE_BYTES,
  SMALL_PAGE_BYTES,
  SMALL_PAGE_MAX_BITS,
  V2_FOOTER_SIZE,
  codecId,
} from "../constants.js";
import type { EntryRecord } from "../record.js";
import { encodeRoot } from "./footer.js";
import type { V2Footer } from "./footer.js";
import { v2RecordLength } from "./page.js";
import { bucketize, pageChunks, sortByName } from "./index-pages.js";
import type { Layout } from "./index-pages.js";
import type { V2RecordInput } from "./page.js";

/*
 * The one v2 index builder (sections 3.4-3.6). Everything that writes a v2
 * index goes through `planV2Index`: the writer (its EntryTable as the
 * source, `ascending` when names came in order, `duplicates: "unique"`),
 * the tests, and append / compaction. To write generation n+1 (section
 * 3.8): a source over generation n's live records (their bytes through
 * `rawLength` / `copyRaw`, or decoded records through `recordInputOf`;
 * their offsets still point into the older DATA / META), then the new
 * records, then a TOMBSTONE record (flags = FLAG_TOMBSTONE, nothing else
 * needed) per deleted name, with `duplicates: "last"` (or "unique" when
 * the caller already replaced them), so a re-added or deleted name replaces
 * its older record; write `chunks()` after the new META, then
 * `encodeV2Footer(v2FooterOf(plan, { ..., prevFooterOffset }))`. The pages
 * are encoded by `index-pages.ts`.
 */

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
  /**
   * The length of record i's encoded bytes (section 3.5) when the source
   * holds them in exactly the form `writeV2Record` gives its fields (records
   * carried from an older generation, spec 3.8.1), else 0. The builder then
   * copies them with `copyRaw` and never calls `at(i)` for that record.
   */
  rawLength?(i: number): number;
  /** Copies record i's encoded bytes (`rawLength(i)` > 0) into `buf` at `o`; returns the offset after them. */
  copyRaw?(i: number, buf: Uint8Array, o: number): number;
  /** Record i's name bytes when `rawLength(i)` > 0 (a view, not a copy); else the builder copies the raw record to find them. */
  nameBytes?(i: number): Uint8Array;
  /**
   * How many top bits of `nameKey(i)` are exact (default 32): a source that
   * knows only each record's page under some page_bits gives that page as
   * the key's top bits. When the builder needs more page bits, it hashes the
   * names itself; the index is the same either way.
   */
  readonly keyBits?: number;
  /**
   * The source's records come page by page under this page_bits, each
   * page's in strictly ascending name order (records carried from an older
   * generation with new ones merged in, spec 3.8.1). Under as many page bits
   * or more, every page of the new index is then in order as it comes, and
   * is neither sorted nor compared again: the source vouches for it.
   */
  readonly pageOrderBits?: number;
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

/**
 * A decoded v2 record (from an older generation) as builder input, the same
 * fields re-encoded. A record whose codec this reader does not know cannot
 * be re-encoded faithfully (its codec byte is not kept): DesUnsupportedError.
 */
export function recordInputOf(r: EntryRecord): V2RecordInput {
  const compressed = (r.flags & FLAG_COMPRESSED) !== 0;
  if (compressed && (r.compression === undefined || r.compression === "none")) {
    throw new DesUnsupportedError(
      `${JSON.stringify(r.name)}: its codec is unknown, so its record cannot be written again`,
    );
  }
  return {
    name: utf8Encode(r.name),
    flags: r.flags,
    codec: compressed ? codecId(r.compression!) : 0,
    size: r.size,
    storedSize: r.storedSize,
    dataOffset: r.dataOffset,
    dataHash: r.dataHash ?? 0n,
    externalKey: r.externalKey === undefined ? undefined : utf8Encode(r.externalKey),
    metaLength: r.metaLength,
    metaOffset: r.metaOffset,
    metaHash: r.metaHash ?? 0n,
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

/** Where a generation's sections lie (section 3.6); the index is written at `indexStart`. */
export interface V2Regions {
  readonly dataStart: number;
  readonly dataLength: number;
  readonly metaStart: number;
  readonly metaLength: number;
  readonly indexStart: number;
  /** The footer of the generation this one follows (append); 0 or absent for the first. */
  readonly prevFooterOffset?: number;
}

/** The footer that closes the index of `plan` written at `r.indexStart` (encode it with encodeV2Footer). */
export function v2FooterOf(plan: V2IndexPlan, r: V2Regions): V2Footer {
  return {
    pageBits: plan.pageBits,
    requiredFeatures: 0,
    dataStart: r.dataStart,
    dataLength: r.dataLength,
    metaStart: r.metaStart,
    metaLength: r.metaLength,
    indexStart: r.indexStart,
    indexLength: plan.indexLength,
    entryCount: plan.entryCount,
    prevFooterOffset: r.prevFooterOffset ?? 0,
    archiveLength: r.indexStart + plan.indexLength + V2_FOOTER_SIZE,
    rootHash: plan.rootHash,
  };
}

/**
 * Plans the v2 index of `source` (sections 3.4 and 3.5): the records go to
 * page `xxh64(name) >> (64 - page_bits)`, sorted by name bytes inside their
 * page; `page_bits` is the smallest, from `firstPageBits(bytes)` up (spec
 * 3.4), for which no page holding two or more records passes 65,536 bytes
 * (at most 24). Records are sized without being encoded; each is encoded once, into
 * its page, when `chunks()` runs. Pure: no I/O. Needs `loadHasher()` to
 * have been awaited (record, page and root checksums).
 */
export function planV2Index(source: IndexRecordSource, opts: IndexBuildOptions = {}): V2IndexPlan {
  const n = source.count;
  const duplicates = opts.duplicates ?? "error";
  if (source.rawLength && !source.copyRaw)
    throw new DesInvalidArgumentError("a record source with rawLength needs copyRaw");
  const hashKey = (i: number): number => Number(xxh64(nameOf(source, i)) >> 32n);
  const keyOf = source.nameKey ? source.nameKey.bind(source) : hashKey;
  const keys = new Uint32Array(n);
  const recLen = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    keys[i] = keyOf(i);
    const rl = source.rawLength?.(i) ?? 0;
    const l = rl > 0 ? rl : v2RecordLength(source.at(i));
    recLen[i] = l;
    total += l;
  }
  let keyBits = source.nameKey ? (source.keyBits ?? 32) : 32;
  // The page order the source vouches for holds while its keys agree with the names' hashes: a record
  // whose name hashes to another page than the one it came in (a foreign writer's page) moves when the
  // keys are made exact, out of the order it came in, and the pages are then sorted after all.
  let pageOrderBits = source.pageOrderBits;
  /** Makes the keys exact to `bits` bits (hashing every name, once) when the source's are not. */
  const exactTo = (bits: number): void => {
    if (bits <= keyBits) return;
    const ob = pageOrderBits !== undefined && pageOrderBits <= keyBits ? pageOrderBits : 0;
    const obShift = 32 - ob;
    for (let i = 0; i < n; i++) {
      const k = hashKey(i);
      if (ob > 0 && k >>> obShift !== keys[i]! >>> obShift) pageOrderBits = undefined;
      keys[i] = k;
    }
    keyBits = 32;
  };
  const compare = source.compareNames ? source.compareNames.bind(source) : namesComparator(source);
  const ascending = opts.ascending === true;
  // Dropped records (duplicates superseded under "last") get length 0 and are skipped.
  let live = n;
  if (duplicates !== "unique" && !ascending && n > 1) {
    const estimate = firstPageBits(total);
    exactTo(estimate);
    const shift = 32 - estimate;
    const buckets = bucketize(n, 2 ** estimate, (i) => (estimate === 0 ? 0 : keys[i]! >>> shift), recLen);
    for (let p = 0; p < buckets.count; p++) {
      const members = sortByName(buckets.members(p), compare);
      for (let k = 1; k < members.length; k++) {
        const a = members[k - 1]!;
        const b = members[k]!;
        if (compare(a, b) !== 0) continue;
        if (duplicates === "error") throw new DesDuplicateError(nameText(nameOf(source, b)));
        // Equal names sort by index, so b (later) supersedes a.
        total -= recLen[a]!;
        recLen[a] = 0;
        live--;
      }
    }
  }
  let bits = firstPageBits(total);
  exactTo(bits);
  let sizes = pageSizes(keys, recLen, bits);
  while (!sizes.fits && bits < MAX_PAGE_BITS) {
    exactTo(++bits);
    sizes = pageSizes(keys, recLen, bits);
  }
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
      const layout: Layout = {
        source,
        pageOf,
        counts: sizes.counts,
        pageLengths,
        recLen,
        total,
        compare,
        pageOrderBits,
      };
      yield* pageChunks(layout, ascending);
      yield root;
    },
  };
}

/**
 * The first page_bits to try (spec 3.4): pages averaging at most
 * SMALL_PAGE_BYTES while that needs at most SMALL_PAGE_MAX_BITS, else at most
 * TARGET_PAGE_BYTES.
 */
export function firstPageBits(total: number): number {
  if (total <= SMALL_PAGE_BYTES) return 0;
  const small = Math.ceil(Math.log2(total / SMALL_PAGE_BYTES));
  if (small <= SMALL_PAGE_MAX_BITS) return small;
  return Math.min(MAX_PAGE_BITS, Math.max(SMALL_PAGE_MAX_BITS, Math.ceil(Math.log2(total / TARGET_PAGE_BYTES))));
}

function pageSizes(
  keys: Uint32Array,
  recLen: Uint32Array,
  bits: number,
): { pageOf: Uint32Array; bytes: Uint32Array; counts: Uint32Array; fits: boolean } {
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

/** Name comparison for a source without one: each name is read through `at` and copied, as `at` may reuse its record. */
function namesComparator(source: IndexRecordSource): (a: number, b: number) => number {
  let lastI = -1;
  let lastName = new Uint8Array(0);
  return (a, b) => {
    if (a !== lastI) {
      lastName = nameOf(source, a).slice();
      lastI = a;
    }
    return compareBytes(lastName, nameOf(source, b));
  };
}

/** Record i's name bytes: the source's view of them, else after the leading varint of its raw bytes (copied), or its input's. */
function nameOf(source: IndexRecordSource, i: number): Uint8Array {
  const rl = source.rawLength?.(i) ?? 0;
  if (rl === 0) return source.at(i).name;
  if (source.nameBytes) return source.nameBytes(i);
  const raw = new Uint8Array(rl);
  source.copyRaw!(i, raw, 0);
  let len = 0;
  let o = 0;
  for (let shift = 1; ; shift *= 128) {
    const b = raw[o++]!;
    len += (b & 0x7f) * shift;
    if (b < 0x80) break;
  }
  return raw.subarray(o, o + len);
}

function nameText(name: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(name);
}
