import { ByteReader, compareBytes, putVarint, utf8Decode, varintLength } from "../bytes.js";
import { DesChecksumError, DesFormatError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import {
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  FLAG_TOMBSTONE,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  MIN_V2_RECORD,
  PAGE_OVERHEAD,
  CODEC_NONE,
  codecName,
} from "../constants.js";
import type { EntryRecord } from "../record.js";
import type { V2Footer } from "./footer.js";

/** Which page a name belongs to: the top `pageBits` bits of xxh64(name). */
export function pageOfHash(hash: bigint, pageBits: number): number {
  return pageBits === 0 ? 0 : Number(hash >> BigInt(64 - pageBits));
}

export interface V2RecordInput {
  readonly name: Uint8Array;
  readonly flags: number;
  readonly codec: number;
  readonly size: number;
  readonly storedSize: number;
  readonly dataOffset: number;
  readonly dataHash: bigint;
  readonly externalKey: Uint8Array | undefined;
  readonly metaLength: number;
  readonly metaOffset: number;
  readonly metaHash: bigint;
}

/**
 * The byte length of a record (section 3.5). The one place besides
 * `writeV2Record` that knows the record layout; the two are tested against
 * each other through every round trip.
 */
export function v2RecordLength(rec: V2RecordInput): number {
  const flags = rec.flags;
  let len = varintLength(rec.name.length) + rec.name.length + varintLength(flags);
  if (flags & FLAG_TOMBSTONE) return len;
  if (flags & FLAG_COMPRESSED) len += 1 + varintLength(rec.size);
  len += varintLength(rec.storedSize);
  const external = (flags & FLAG_EXTERNAL) !== 0;
  if (rec.storedSize > 0 && !external) len += varintLength(rec.dataOffset);
  if (external) {
    const keyLen = rec.externalKey?.length ?? 0;
    len += varintLength(keyLen) + keyLen;
  }
  if (rec.storedSize > 0) len += 8;
  len += varintLength(rec.metaLength);
  if (rec.metaLength > 0) len += varintLength(rec.metaOffset) + 8;
  return len;
}

/** Writes a record (section 3.5) at `o` of `buf`, which has room for it; returns the offset after it. */
export function writeV2Record(buf: Uint8Array, view: DataView, o: number, rec: V2RecordInput): number {
  const flags = rec.flags;
  o = putVarint(buf, o, rec.name.length);
  buf.set(rec.name, o);
  o += rec.name.length;
  o = putVarint(buf, o, flags);
  if (flags & FLAG_TOMBSTONE) return o;
  if (flags & FLAG_COMPRESSED) {
    buf[o++] = rec.codec;
    o = putVarint(buf, o, rec.size);
  }
  o = putVarint(buf, o, rec.storedSize);
  const external = (flags & FLAG_EXTERNAL) !== 0;
  if (rec.storedSize > 0 && !external) o = putVarint(buf, o, rec.dataOffset);
  if (external) {
    const key = rec.externalKey ?? new Uint8Array(0);
    o = putVarint(buf, o, key.length);
    buf.set(key, o);
    o += key.length;
  }
  if (rec.storedSize > 0) {
    view.setBigUint64(o, rec.dataHash, true);
    o += 8;
  }
  o = putVarint(buf, o, rec.metaLength);
  if (rec.metaLength > 0) {
    o = putVarint(buf, o, rec.metaOffset);
    view.setBigUint64(o, rec.metaHash, true);
    o += 8;
  }
  return o;
}

/** A decoded index page: records (and their name bytes) in ascending name-byte order. */
export interface DecodedPage {
  readonly names: readonly Uint8Array[];
  readonly records: readonly EntryRecord[];
}

/** Checks a page's length and checksum; returns the end of its records (the checksum's offset). */
export function verifyPage(page: Uint8Array, pageIndex: number): number {
  if (page.length < PAGE_OVERHEAD) throw new DesFormatError(`page ${pageIndex} is too short`);
  const bodyEnd = page.length - 8;
  const stored = new DataView(page.buffer, page.byteOffset + bodyEnd, 8).getBigUint64(0, true);
  if (stored !== xxh64(page.subarray(0, bodyEnd))) throw new DesChecksumError({ kind: "page", page: pageIndex });
  return bodyEnd;
}

/**
 * Decodes one page after checking its checksum, with every check of section
 * 3.6 on every record. `limit` is the offset no data or meta may reach (the
 * index start), so a record can never point past it. Listing and verify use
 * this; lookups use `PageView`.
 */
export function decodePage(page: Uint8Array, pageIndex: number, footer: V2Footer): DecodedPage {
  return decodeRecords(page, pageIndex, footer, verifyPage(page, pageIndex));
}

function decodeRecords(page: Uint8Array, pageIndex: number, footer: V2Footer, bodyEnd: number): DecodedPage {
  const r = new ByteReader(page, `v2 page ${pageIndex}`, 0, bodyEnd);
  const count = r.u32();
  if (count * MIN_V2_RECORD > r.remaining) r.fail(`record count ${count} does not fit`);
  const limit = footer.indexStart;
  const names: Uint8Array[] = new Array(count);
  const records: EntryRecord[] = new Array(count);
  let prev: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const nameLen = r.varint("name_len");
    if (nameLen === 0 || nameLen > MAX_NAME_BYTES) r.fail(`record ${i}: name length ${nameLen}`);
    const nameBytes = r.take(nameLen);
    if (nameBytes.includes(0)) r.fail(`record ${i}: name contains NUL`);
    if (prev && compareBytes(prev, nameBytes) >= 0) r.fail(`record ${i}: names are not strictly ascending`);
    if (pageOfHash(xxh64(nameBytes), footer.pageBits) !== pageIndex)
      r.fail(`record ${i}: name belongs to another page`);
    prev = nameBytes;
    const name = utf8Decode(nameBytes, `v2 page ${pageIndex} record ${i} name`);
    names[i] = nameBytes;
    records[i] = decodeRecordBody(r, name, limit);
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} stray bytes after the last record`);
  return { names, records };
}

/**
 * A verified page kept as its bytes, for lookups (section 3.9, "Lookup
 * without decoding the page"). The checksum is checked once, when the view
 * is made. The first lookup walks the records once, checking their framing
 * and the strict order of their names, and keeps where each name starts;
 * every lookup is then a binary search over the raw name bytes, and only
 * the record found is decoded (its offsets checked as in 3.5). Nothing is
 * hashed or decoded for the records not asked for.
 */
export class PageView {
  readonly bytes: Uint8Array;
  readonly pageIndex: number;
  readonly count: number;
  private readonly bodyEnd: number;
  private readonly limit: number;
  private readonly footer: V2Footer;
  /** Offset of each record's name, and its length; built by the first lookup. */
  private nameAt: Uint32Array | undefined;
  private nameLen: Uint32Array | undefined;

  constructor(bytes: Uint8Array, pageIndex: number, footer: V2Footer) {
    this.bodyEnd = verifyPage(bytes, pageIndex);
    this.bytes = bytes;
    this.pageIndex = pageIndex;
    this.footer = footer;
    this.limit = footer.indexStart;
    const count = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (count * MIN_V2_RECORD > this.bodyEnd - 4)
      throw new DesFormatError(`v2 page ${pageIndex}: record count ${count} does not fit`);
    this.count = count;
  }

  /** Bytes this view holds (the page plus its offsets table once built), for a cache budget. */
  get cost(): number {
    return this.bytes.length + this.count * 8 + 64;
  }

  /** Every record, decoded with all the checks of `decodePage` (listing, verify). */
  decodeAll(): DecodedPage {
    return decodeRecords(this.bytes, this.pageIndex, this.footer, this.bodyEnd);
  }

  /**
   * The record whose name is exactly `name` (UTF-8 bytes), or undefined.
   * `asString` may give the name as a well-formed string (whose UTF-8 is
   * `name`): the record then carries it instead of a fresh decode.
   */
  find(name: Uint8Array, asString?: string): EntryRecord | undefined {
    if (!this.nameAt) this.scan();
    const at = this.nameAt!;
    const lens = this.nameLen!;
    const bytes = this.bytes;
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareAt(bytes, at[mid]!, lens[mid]!, name);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else return this.decodeAt(mid, at[mid]!, lens[mid]!, asString);
    }
    return undefined;
  }

  private decodeAt(i: number, start: number, len: number, asString: string | undefined): EntryRecord {
    const r = new ByteReader(this.bytes, `v2 page ${this.pageIndex}`, start + len, this.bodyEnd);
    const nameBytes = this.bytes.subarray(start, start + len);
    if (nameBytes.includes(0)) r.fail(`record ${i}: name contains NUL`);
    // The caller found this page from the name's own hash, so the record is
    // in the page its name belongs to.
    const name = asString ?? utf8Decode(nameBytes, `v2 page ${this.pageIndex} record ${i} name`);
    return decodeRecordBody(r, name, this.limit);
  }

  /**
   * One pass over the records: framing, name lengths, strict order, no stray
   * bytes. Written as one flat loop with its own varint reads: a first lookup
   * in a fresh process runs it before the JIT has compiled anything, where
   * every call costs.
   */
  private scan(): void {
    const count = this.count;
    const bytes = this.bytes;
    const end = this.bodyEnd;
    const at = new Uint32Array(count);
    const lens = new Uint32Array(count);
    let o = 4;
    let prevAt = 0;
    let prevLen = 0;
    let v: number;
    const fail = (i: number, what: string): never => {
      throw new DesFormatError(`v2 page ${this.pageIndex}: record ${i}: ${what}`);
    };
    for (let i = 0; i < count; i++) {
      // name_len
      v = 0;
      for (let shift = 1, k = 0; ; k++, shift *= 128) {
        if (o >= end || k === 8) fail(i, "truncated or bad varint");
        const b = bytes[o++]!;
        v += (b & 0x7f) * shift;
        if (b < 0x80) break;
      }
      const nameLen = v;
      if (nameLen === 0 || nameLen > MAX_NAME_BYTES) fail(i, `name length ${nameLen}`);
      const start = o;
      o += nameLen;
      if (o > end) fail(i, "truncated name");
      if (i > 0) {
        // Strictly ascending: the first differing byte is larger, or the previous name is a proper prefix.
        const n = prevLen < nameLen ? prevLen : nameLen;
        let k = 0;
        while (k < n && bytes[prevAt + k] === bytes[start + k]) k++;
        if (k === n ? prevLen >= nameLen : bytes[prevAt + k]! > bytes[start + k]!)
          fail(i, "names are not strictly ascending");
      }
      at[i] = start;
      lens[i] = nameLen;
      prevAt = start;
      prevLen = nameLen;
      o = skipRecordFields(bytes, o, end);
      if (o < 0) fail(i, "truncated or bad record");
    }
    if (o !== end) throw new DesFormatError(`v2 page ${this.pageIndex}: ${end - o} stray bytes after the last record`);
    this.nameAt = at;
    this.nameLen = lens;
  }
}

/** A varint at `o` of `bytes` (below `end`): its value, with the offset after it in `varintEnd`; -1 when malformed. */
let varintEnd = 0;
function varintAt(bytes: Uint8Array, o: number, end: number): number {
  let v = 0;
  let shift = 1;
  for (let k = 0; k < 8; k++) {
    if (o >= end) return -1;
    const b = bytes[o++]!;
    v += (b & 0x7f) * shift;
    if (b < 0x80) {
      varintEnd = o;
      return v;
    }
    shift *= 128;
  }
  return -1;
}

/** Steps over a record's fields after its name (section 3.5): the offset after them, or -1 when they do not fit. */
function skipRecordFields(bytes: Uint8Array, o: number, end: number): number {
  const flags = varintAt(bytes, o, end);
  if (flags < 0) return -1;
  o = varintEnd;
  if (flags & FLAG_TOMBSTONE) return o;
  if (flags & FLAG_COMPRESSED) {
    if (varintAt(bytes, o + 1, end) < 0) return -1;
    o = varintEnd;
  }
  const storedSize = varintAt(bytes, o, end);
  if (storedSize < 0) return -1;
  o = varintEnd;
  const external = (flags & FLAG_EXTERNAL) !== 0;
  if (storedSize > 0 && !external) {
    if (varintAt(bytes, o, end) < 0) return -1;
    o = varintEnd;
  }
  if (external) {
    const keyLen = varintAt(bytes, o, end);
    if (keyLen < 0) return -1;
    o = varintEnd + keyLen;
  }
  if (storedSize > 0) o += 8;
  const metaLen = varintAt(bytes, o, end);
  if (metaLen < 0) return -1;
  o = varintEnd;
  if (metaLen > 0) {
    if (varintAt(bytes, o, end) < 0) return -1;
    o = varintEnd + 8;
  }
  return o > end ? -1 : o;
}

/** Unsigned bytewise comparison of bytes[start, start + len) with `name`. */
function compareAt(bytes: Uint8Array, start: number, len: number, name: Uint8Array): number {
  const n = Math.min(len, name.length);
  for (let i = 0; i < n; i++) {
    const d = bytes[start + i]! - name[i]!;
    if (d !== 0) return d;
  }
  return len - name.length;
}

const EMPTY_RECORD_FIELDS = {
  compression: "none",
  size: 0,
  storedSize: 0,
  dataOffset: 0,
  dataHash: undefined,
  metaOffset: 0,
  metaLength: 0,
  metaHash: undefined,
  externalKey: undefined,
} as const;

function decodeRecordBody(r: ByteReader, name: string, limit: number): EntryRecord {
  const flags = r.varint("flags");
  if (flags & FLAG_TOMBSTONE) return { name, flags, ...EMPTY_RECORD_FIELDS };
  let compression = codecName(0);
  let size = -1;
  if (flags & FLAG_COMPRESSED) {
    // Only 1 (gzip) and 2 (brotli) are codecs; 0 under COMPRESSED is unknown, not "none"
    // (read as "none" it would return stored_len bytes for an entry whose size differs).
    const codec = r.u8();
    compression = codec === CODEC_NONE ? undefined : codecName(codec);
    size = r.varint("size");
  }
  const storedSize = r.varint("stored_len");
  if (size < 0) size = storedSize;
  const external = (flags & FLAG_EXTERNAL) !== 0;
  let dataOffset = 0;
  if (storedSize > 0 && !external) {
    dataOffset = r.varint("data_offset");
    if (dataOffset < HEADER_SIZE || dataOffset + storedSize > limit)
      r.fail(`${JSON.stringify(name)}: data outside the archive`);
  }
  let externalKey: string | undefined;
  if (external) {
    const keyLen = r.varint("external key length");
    externalKey = utf8Decode(r.take(keyLen), "external key");
  }
  const dataHash = storedSize > 0 ? r.u64big() : undefined;
  const metaLength = r.varint("meta_len");
  let metaOffset = 0;
  let metaHash: bigint | undefined;
  if (metaLength > 0) {
    metaOffset = r.varint("meta_offset");
    if (metaOffset < HEADER_SIZE || metaOffset + metaLength > limit)
      r.fail(`${JSON.stringify(name)}: meta outside the archive`);
    metaHash = r.u64big();
  }
  return {
    name,
    flags,
    compression,
    size,
    storedSize,
    dataOffset,
    dataHash,
    metaOffset,
    metaLength,
    metaHash,
    externalKey,
  };
}
