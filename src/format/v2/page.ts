import { ByteReader, compareBytes, putVarint, utf8Decode, varintLength } from "../bytes.js";
import { decodeFields } from "./record-fields.js";
import { DesChecksumError, DesFormatError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import {
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  FLAG_TOMBSTONE,
  MAX_NAME_BYTES,
  MIN_V2_RECORD,
  PAGE_OVERHEAD,
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
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
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
    records[i] = decodeFields(page, view, r, bodyEnd, name, limit, pageIndex);
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
  declare readonly bytes: Uint8Array;
  declare readonly pageIndex: number;
  declare readonly count: number;
  declare private readonly bodyEnd: number;
  declare private readonly footer: V2Footer;
  declare private readonly view: DataView;
  /** Offset of each record's name, and its length; built by the first lookup. */
  declare private nameAt: Uint32Array | undefined;
  declare private nameLen: Uint32Array | undefined;

  constructor(bytes: Uint8Array, pageIndex: number, footer: V2Footer) {
    this.bodyEnd = verifyPage(bytes, pageIndex);
    this.bytes = bytes;
    this.pageIndex = pageIndex;
    this.footer = footer;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.nameAt = undefined;
    this.nameLen = undefined;
    const count = this.view.getUint32(0, true);
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
    const want = name.length;
    let lo = 0;
    let hi = this.count - 1;
    // How many leading bytes `name` shares with the names just below `lo` and just above `hi`: every
    // name between them shares the smaller of the two, so each comparison starts there
    // (names of one page often share long prefixes, and byte loops are what a cold lookup pays for).
    let sameLo = 0;
    let sameHi = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      // Unsigned bytewise comparison of the record's name with `name`.
      const start = at[mid]!;
      const len = lens[mid]!;
      const n = len < want ? len : want;
      let k = sameLo < sameHi ? sameLo : sameHi;
      while (k < n && bytes[start + k] === name[k]) k++;
      const c = k < n ? bytes[start + k]! - name[k]! : len - want;
      if (c < 0) {
        lo = mid + 1;
        sameLo = k;
      } else if (c > 0) {
        hi = mid - 1;
        sameHi = k;
      } else return this.decodeAt(mid, start, len, asString);
    }
    return undefined;
  }

  private decodeAt(i: number, start: number, len: number, asString: string | undefined): EntryRecord {
    const bytes = this.bytes;
    for (let k = start; k < start + len; k++)
      if (bytes[k] === 0) throw new DesFormatError(`v2 page ${this.pageIndex}: record ${i}: name contains NUL`);
    // The caller found this page from the name's own hash, so the record is
    // in the page its name belongs to.
    const name =
      asString ?? utf8Decode(bytes.subarray(start, start + len), `v2 page ${this.pageIndex} record ${i} name`);
    return decodeFields(
      bytes,
      this.view,
      { pos: start + len },
      this.bodyEnd,
      name,
      this.footer.indexStart,
      this.pageIndex,
    );
  }

  /**
   * One pass over the records: framing, name lengths, strict order, no stray
   * bytes. One flat loop with its varints read inline, calling nothing: a
   * first lookup in a fresh process runs it before the JIT has compiled
   * anything, where every call costs.
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
    // Each varint is read inline into `v` (`do { ... } while (b >= 0x80)`); one past `end` or longer than 8 bytes ends the pass.
    let v: number;
    let scale: number;
    let b: number;
    let bad = "";
    let i = 0;
    records: for (; i < count; i++) {
      v = 0;
      scale = 1;
      do {
        if (o >= end || scale > MAX_VARINT_SCALE) break records;
        b = bytes[o++]!;
        v += (b & 0x7f) * scale;
        scale *= 0x80;
      } while (b >= 0x80);
      const nameLen = v;
      if (nameLen === 0 || nameLen > MAX_NAME_BYTES) {
        bad = `name length ${nameLen}`;
        break;
      }
      const start = o;
      o += nameLen;
      if (o > end) break;
      if (i > 0) {
        // Strictly ascending: the first differing byte is larger, or the previous name is a proper prefix.
        const n = prevLen < nameLen ? prevLen : nameLen;
        let k = 0;
        while (k < n && bytes[prevAt + k] === bytes[start + k]) k++;
        if (k === n ? prevLen >= nameLen : bytes[prevAt + k]! > bytes[start + k]!) {
          bad = "names are not strictly ascending";
          break;
        }
      }
      at[i] = start;
      lens[i] = nameLen;
      prevAt = start;
      prevLen = nameLen;
      // flags
      v = 0;
      scale = 1;
      do {
        if (o >= end || scale > MAX_VARINT_SCALE) break records;
        b = bytes[o++]!;
        v += (b & 0x7f) * scale;
        scale *= 0x80;
      } while (b >= 0x80);
      const flags = v;
      if (flags & FLAG_TOMBSTONE) continue;
      if (flags & FLAG_COMPRESSED) {
        o++; // codec
        v = 0;
        scale = 1;
        do {
          if (o >= end || scale > MAX_VARINT_SCALE) break records;
          b = bytes[o++]!;
          v += (b & 0x7f) * scale;
          scale *= 0x80;
        } while (b >= 0x80); // size
      }
      v = 0;
      scale = 1;
      do {
        if (o >= end || scale > MAX_VARINT_SCALE) break records;
        b = bytes[o++]!;
        v += (b & 0x7f) * scale;
        scale *= 0x80;
      } while (b >= 0x80); // stored_len
      const stored = v;
      const external = (flags & FLAG_EXTERNAL) !== 0;
      if (stored > 0 && !external) {
        v = 0;
        scale = 1;
        do {
          if (o >= end || scale > MAX_VARINT_SCALE) break records;
          b = bytes[o++]!;
          v += (b & 0x7f) * scale;
          scale *= 0x80;
        } while (b >= 0x80); // data_offset
      }
      if (external) {
        v = 0;
        scale = 1;
        do {
          if (o >= end || scale > MAX_VARINT_SCALE) break records;
          b = bytes[o++]!;
          v += (b & 0x7f) * scale;
          scale *= 0x80;
        } while (b >= 0x80); // key_len
        o += v;
      }
      if (stored > 0) o += 8; // data hash
      v = 0;
      scale = 1;
      do {
        if (o >= end || scale > MAX_VARINT_SCALE) break records;
        b = bytes[o++]!;
        v += (b & 0x7f) * scale;
        scale *= 0x80;
      } while (b >= 0x80); // meta_len
      if (v > 0) {
        v = 0;
        scale = 1;
        do {
          if (o >= end || scale > MAX_VARINT_SCALE) break records;
          b = bytes[o++]!;
          v += (b & 0x7f) * scale;
          scale *= 0x80;
        } while (b >= 0x80); // meta_offset
        o += 8; // meta hash
      }
      if (o > end) break;
    }
    if (i < count)
      throw new DesFormatError(`v2 page ${this.pageIndex}: record ${i}: ${bad || "truncated or bad record"}`);
    if (o !== end) throw new DesFormatError(`v2 page ${this.pageIndex}: ${end - o} stray bytes after the last record`);
    this.nameAt = at;
    this.nameLen = lens;
  }
}

/** The scale of a varint's ninth byte: a varint has at most 8. */
const MAX_VARINT_SCALE = 2 ** 49;
