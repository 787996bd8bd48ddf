import { ByteReader, ByteWriter, utf8Decode, utf8Encode } from "../format/bytes.js";
import { xxh64 } from "../format/hash.js";

/**
 * Values the reader stores in an IndexCache (see docs/caching.md):
 *
 *   u8 format | payload | u64 xxh64(format | payload), little-endian
 *
 * A value whose format byte is unknown, whose checksum fails or whose payload
 * does not parse is never used: the reader deletes it and counts a miss.
 */
export const FRAME_TAIL = 0xd1;
export const FRAME_RANGE = 0xd2;

/** The tail of an archive as a source returned it: the last bytes, the total size, the version token. */
export interface CachedTail {
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly version: string;
}

export function frame(format: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + payload.length + 8);
  out[0] = format;
  out.set(payload, 1);
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  view.setBigUint64(1 + payload.length, xxh64(out.subarray(0, 1 + payload.length)), true);
  return out;
}

/** The payload of a well-formed frame of `format`, else undefined. */
export function unframe(format: number, value: Uint8Array): Uint8Array | undefined {
  if (!(value instanceof Uint8Array) || value.length < 9 || value[0] !== format) return undefined;
  const end = value.length - 8;
  const stored = new DataView(value.buffer, value.byteOffset + end, 8).getBigUint64(0, true);
  if (stored !== xxh64(value.subarray(0, end))) return undefined;
  return value.subarray(1, end);
}

/** Tail payload: u64 size | u32 version length | version (UTF-8) | tail bytes. */
export function encodeTail(t: CachedTail): Uint8Array {
  const version = utf8Encode(t.version);
  const w = new ByteWriter(12 + version.length + t.bytes.length);
  w.u64(t.size).u32(version.length).bytes(version).bytes(t.bytes);
  return frame(FRAME_TAIL, w.finish());
}

export function decodeTail(value: Uint8Array): CachedTail | undefined {
  const payload = unframe(FRAME_TAIL, value);
  if (!payload) return undefined;
  try {
    const r = new ByteReader(payload, "cached tail");
    const size = r.u64("size");
    const version = utf8Decode(r.take(r.u32()), "cached version");
    const bytes = r.take(r.remaining);
    if (version.length === 0 || bytes.length > size) return undefined;
    // A copy: the value may be a view of a larger buffer the cache keeps.
    return { size, version, bytes: new Uint8Array(bytes) };
  } catch {
    return undefined;
  }
}

/** A raw index range (a v2 page, the v2 root, the v1 index): the bytes as read from the archive. */
export function encodeRange(bytes: Uint8Array): Uint8Array {
  return frame(FRAME_RANGE, bytes);
}

export function decodeRange(value: Uint8Array, length: number): Uint8Array | undefined {
  const payload = unframe(FRAME_RANGE, value);
  return payload && payload.length === length ? new Uint8Array(payload) : undefined;
}
