/*
 * The fields of a v2 record after its name (section 3.5), decoded straight
 * from page bytes: the one decoder behind lookups (PageView) and whole-page
 * decodes (decodePage). One flat function and one varint helper: a first
 * lookup in a fresh process runs it before the JIT has compiled anything,
 * where every function called is compiled on the spot.
 */
import { utf8Decode } from "../bytes.js";
import { CODEC_BROTLI, CODEC_GZIP, FLAG_COMPRESSED, FLAG_EXTERNAL, FLAG_TOMBSTONE, HEADER_SIZE } from "../constants.js";
import type { Compression } from "../constants.js";
import { DesFormatError } from "../../errors.js";
import type { EntryRecord } from "../record.js";

/** A read position in page bytes, moved past the record by `decodeFields` (a ByteReader is one). */
export interface Cursor {
  pos: number;
}

function fail(page: number, message: string): never {
  throw new DesFormatError(`v2 page ${page}: ${message}`);
}

/** Where the last `varint` stopped. */
let after = 0;

/** A varint (at most 8 bytes, a safe integer) at `o`, below `end`; the offset after it goes to `after`. */
function varint(bytes: Uint8Array, o: number, end: number, page: number, field: string): number {
  let v = 0;
  let scale = 1;
  for (let k = 0; k < 8; k++) {
    if (o >= end) fail(page, `${field}: truncated`);
    const b = bytes[o++]!;
    v += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (v > Number.MAX_SAFE_INTEGER) fail(page, `${field} is too large`);
      after = o;
      return v;
    }
    scale *= 0x80;
  }
  return fail(page, `${field}: varint longer than 8 bytes`);
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

/**
 * The record named `name` whose fields start at `at.pos` of the page body
 * `bytes[.., end)` (`view` over the same bytes), with the checks of 3.5:
 * every field inside the body, data and meta below `limit` (the index
 * start). Moves `at.pos` past the record.
 */
export function decodeFields(
  bytes: Uint8Array,
  view: DataView,
  at: Cursor,
  end: number,
  name: string,
  limit: number,
  page: number,
): EntryRecord {
  const flags = varint(bytes, at.pos, end, page, "flags");
  let o = after;
  if (flags & FLAG_TOMBSTONE) {
    at.pos = o;
    return { name, flags, ...EMPTY_RECORD_FIELDS };
  }
  let compression: Compression | undefined = "none";
  let size = -1;
  if (flags & FLAG_COMPRESSED) {
    // Only 1 (gzip) and 2 (brotli) are codecs; 0 under COMPRESSED is unknown, not "none"
    // (read as "none" it would return stored_len bytes for an entry whose size differs).
    if (o >= end) fail(page, "codec: truncated");
    const codec = bytes[o++]!;
    compression = codec === CODEC_GZIP ? "gzip" : codec === CODEC_BROTLI ? "brotli" : undefined;
    size = varint(bytes, o, end, page, "size");
    o = after;
  }
  const storedSize = varint(bytes, o, end, page, "stored_len");
  o = after;
  if (size < 0) size = storedSize;
  const external = (flags & FLAG_EXTERNAL) !== 0;
  let dataOffset = 0;
  if (storedSize > 0 && !external) {
    dataOffset = varint(bytes, o, end, page, "data_offset");
    o = after;
    if (dataOffset < HEADER_SIZE || dataOffset + storedSize > limit)
      fail(page, `${JSON.stringify(name)}: data outside the archive`);
  }
  let externalKey: string | undefined;
  if (external) {
    const keyLen = varint(bytes, o, end, page, "external key length");
    o = after;
    if (keyLen > end - o) fail(page, "external key: truncated");
    externalKey = utf8Decode(bytes.subarray(o, o + keyLen), "external key");
    o += keyLen;
  }
  let dataHash: bigint | undefined;
  if (storedSize > 0) {
    if (end - o < 8) fail(page, "data hash: truncated");
    dataHash = view.getBigUint64(o, true);
    o += 8;
  }
  const metaLength = varint(bytes, o, end, page, "meta_len");
  o = after;
  let metaOffset = 0;
  let metaHash: bigint | undefined;
  if (metaLength > 0) {
    metaOffset = varint(bytes, o, end, page, "meta_offset");
    o = after;
    if (metaOffset < HEADER_SIZE || metaOffset + metaLength > limit)
      fail(page, `${JSON.stringify(name)}: meta outside the archive`);
    if (end - o < 8) fail(page, "meta hash: truncated");
    metaHash = view.getBigUint64(o, true);
    o += 8;
  }
  at.pos = o;
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
