import { HEADER_MAGIC, HEADER_SIZE, V2_FOOTER_SIZE, startsWith } from "../constants.js";

/** Section 3.8.3: header bytes 9..15, u56 little-endian. */
export const PENDING_OFFSET = 9;
export const PENDING_BYTES = 7;

/** The 7 bytes of `pending_length` = `length` (0 clears it). */
export function encodePendingLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`pending length ${length}`);
  const out = new Uint8Array(PENDING_BYTES);
  let v = length;
  for (let i = 0; i < PENDING_BYTES; i++) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

/**
 * `pending_length` of a v2 header, or undefined when the bytes are not a v2
 * header. Values above 2^53 - 1 cannot be an archive length and read as 0.
 */
export function decodePendingLength(header: Uint8Array): number | undefined {
  if (header.length < HEADER_SIZE || !startsWith(header, 0, HEADER_MAGIC) || header[8] !== 2) return undefined;
  let v = 0;
  for (let i = PENDING_BYTES - 1; i >= 0; i--) v = v * 256 + header[PENDING_OFFSET + i]!;
  return Number.isSafeInteger(v) ? v : 0;
}

/** The smallest v2 archive: header and footer (and an index of at least one page and its root). */
export const MIN_V2_ARCHIVE = HEADER_SIZE + V2_FOOTER_SIZE;
