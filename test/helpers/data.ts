/** Deterministic test data, shared by the tests and the S3 benchmark so failures reproduce. */

/** The bytes of entry `i` (xorshift32), different per generation `gen` of an archive. */
export function bodyOf(i: number, size: number, gen = 0): Uint8Array {
  const b = new Uint8Array(size);
  let x = (Math.imul(i + 1, 2654435761) ^ Math.imul(gen, 40503)) >>> 0 || 1;
  for (let k = 0; k < size; k++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[k] = x & 255;
  }
  return b;
}

export { rng } from "../../bench/lib.js";
