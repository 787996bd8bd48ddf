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

/**
 * Decodes one page after checking its checksum. `limit` is the offset no data
 * or meta may reach (the index start), so a record can never point past it.
 */
export function decodePage(page: Uint8Array, pageIndex: number, footer: V2Footer): DecodedPage {
  if (page.length < PAGE_OVERHEAD) throw new DesFormatError(`page ${pageIndex} is too short`);
  const bodyEnd = page.length - 8;
  const stored = new DataView(page.buffer, page.byteOffset + bodyEnd, 8).getBigUint64(0, true);
  if (stored !== xxh64(page.subarray(0, bodyEnd))) throw new DesChecksumError({ kind: "page", page: pageIndex });

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
    if (pageOfHash(xxh64(nameBytes), footer.pageBits) !== pageIndex) r.fail(`record ${i}: name belongs to another page`);
    prev = nameBytes;
    const name = utf8Decode(nameBytes, `v2 page ${pageIndex} record ${i} name`);
    names[i] = nameBytes;
    records[i] = decodeRecordBody(r, name, limit);
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} stray bytes after the last record`);
  return { names, records };
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
    if (dataOffset < HEADER_SIZE || dataOffset + storedSize > limit) r.fail(`${JSON.stringify(name)}: data outside the archive`);
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
    if (metaOffset < HEADER_SIZE || metaOffset + metaLength > limit) r.fail(`${JSON.stringify(name)}: meta outside the archive`);
    metaHash = r.u64big();
  }
  return { name, flags, compression, size, storedSize, dataOffset, dataHash, metaOffset, metaLength, metaHash, externalKey };
}

/** Binary search of a decoded page by name bytes. */
export function findInPage(page: DecodedPage, name: Uint8Array): EntryRecord | undefined {
  let lo = 0;
  let hi = page.names.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(page.names[mid]!, name);
    if (c === 0) return page.records[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
