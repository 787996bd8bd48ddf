/*
 * The records of a verified v2 page as byte ranges (section 3.8.1, "Old
 * records carried as bytes"): where each non-tombstone record starts and
 * ends, with its name, and only when every record of the page is exactly
 * what `writeV2Record` would write for its decoded fields (minimal varints,
 * known flags and codec, offsets before `limit`, well-formed UTF-8). Such a
 * record can be copied into a new index as it is, with the same bytes as
 * decoding and re-encoding it would give.
 */
import { utf8Decode } from "../bytes.js";
import {
  CODEC_BROTLI,
  CODEC_GZIP,
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  FLAG_TOMBSTONE,
  HEADER_SIZE,
  KNOWN_FLAGS,
  MAX_NAME_BYTES,
  MIN_V2_RECORD,
} from "../constants.js";

/** Where the live records of one page lie in its bytes; `weight` is each one's stored (not external) plus meta bytes. */
export interface RawRecords {
  readonly count: number;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  readonly nameLen: Uint32Array;
  readonly weight: Float64Array;
}

let at = 0;

/** A minimal varint at `at` (below `end`, at most 7 bytes: below 2^49); -1 otherwise. Advances `at`. */
function varint(bytes: Uint8Array, end: number): number {
  let v = 0;
  let shift = 1;
  for (let k = 0; k < 7; k++) {
    if (at >= end) return -1;
    const b = bytes[at++]!;
    v += (b & 0x7f) * shift;
    if (b < 0x80) return k > 0 && b === 0 ? -1 : v;
    shift *= 128;
  }
  return -1;
}

/** Well-formed UTF-8 (without NUL unless `nul`): a loop for ASCII, the strict decoder for the rest. */
function wellFormed(bytes: Uint8Array, from: number, to: number, nul: boolean): boolean {
  let high = false;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (b === 0 && !nul) return false;
    if (b >= 0x80) high = true;
  }
  if (!high) return true;
  try {
    utf8Decode(bytes.subarray(from, to));
    return true;
  } catch {
    return false;
  }
}

/**
 * The live records of the page body `bytes[4, bodyEnd)` (its checksum
 * already verified), in the page's order, or undefined when one of them is
 * not in the form this writer gives it, or the page does not parse (the
 * caller then decodes the page, with all the checks and errors of
 * `decodePage`). Names are not hashed: the page checksum vouches for them.
 */
export function rawRecords(bytes: Uint8Array, bodyEnd: number, limit: number): RawRecords | undefined {
  if (bodyEnd < 4) return undefined;
  const total = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16)) + bytes[3]! * 2 ** 24;
  if (total * MIN_V2_RECORD > bodyEnd - 4) return undefined;
  const start = new Uint32Array(total);
  const end = new Uint32Array(total);
  const nameLens = new Uint32Array(total);
  const weight = new Float64Array(total);
  let count = 0;
  let prevAt = 0;
  let prevLen = 0;
  at = 4;
  for (let i = 0; i < total; i++) {
    const recAt = at;
    const nameLen = varint(bytes, bodyEnd);
    if (nameLen <= 0 || nameLen > MAX_NAME_BYTES || at + nameLen > bodyEnd) return undefined;
    const nameAt = at;
    at += nameLen;
    if (!wellFormed(bytes, nameAt, at, false)) return undefined;
    if (i > 0) {
      const n = prevLen < nameLen ? prevLen : nameLen;
      let k = 0;
      while (k < n && bytes[prevAt + k] === bytes[nameAt + k]) k++;
      if (k === n ? prevLen >= nameLen : bytes[prevAt + k]! > bytes[nameAt + k]!) return undefined;
    }
    prevAt = nameAt;
    prevLen = nameLen;
    const flags = varint(bytes, bodyEnd);
    if (flags < 0 || flags & ~KNOWN_FLAGS) return undefined;
    if (flags & FLAG_TOMBSTONE) {
      // Tombstones are not carried (3.8.1); a tombstone has nothing after its flags.
      if (flags !== FLAG_TOMBSTONE) return undefined;
      continue;
    }
    if (flags & FLAG_COMPRESSED) {
      const codec = bytes[at++];
      if ((codec !== CODEC_GZIP && codec !== CODEC_BROTLI) || varint(bytes, bodyEnd) < 0) return undefined;
    }
    const stored = varint(bytes, bodyEnd);
    if (stored < 0) return undefined;
    const external = (flags & FLAG_EXTERNAL) !== 0;
    if (stored > 0 && !external) {
      const offset = varint(bytes, bodyEnd);
      if (offset < HEADER_SIZE || offset + stored > limit) return undefined;
    }
    if (external) {
      const keyLen = varint(bytes, bodyEnd);
      if (keyLen < 0 || at + keyLen > bodyEnd || !wellFormed(bytes, at, at + keyLen, true)) return undefined;
      at += keyLen;
    }
    if (stored > 0) at += 8;
    const metaLen = varint(bytes, bodyEnd);
    if (metaLen < 0) return undefined;
    if (metaLen > 0) {
      const metaAt = varint(bytes, bodyEnd);
      if (metaAt < HEADER_SIZE || metaAt + metaLen > limit) return undefined;
      at += 8;
    }
    if (at > bodyEnd) return undefined;
    start[count] = recAt;
    end[count] = at;
    nameLens[count] = nameLen;
    weight[count] = (external ? 0 : stored) + metaLen;
    count++;
  }
  if (at !== bodyEnd) return undefined;
  return { count, start, end, nameLen: nameLens, weight };
}
