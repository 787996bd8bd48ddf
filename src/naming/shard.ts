import { createHash } from "node:crypto";
import { DesInvalidArgumentError } from "../errors.js";

/**
 * Shard hashing as in the Python DES: the top `bits` bits of SHA-256 of the
 * value's UTF-8 bytes, as a big-endian integer.
 */

function checkBits(bits: unknown, max: number): number {
  if (typeof bits !== "number" || !Number.isInteger(bits) || bits < 1 || bits > max) {
    throw new DesInvalidArgumentError(`bits must be an integer 1..${max}, not ${String(bits)}`);
  }
  return bits;
}

/** Strict UTF-8 of a string; a lone surrogate is a DesInvalidArgumentError (Python's `str.encode` raises too). */
export function strictUtf8(value: string): Buffer {
  if (typeof value !== "string") throw new DesInvalidArgumentError(`expected a string, not ${typeof value}`);
  if (!value.isWellFormed()) throw new DesInvalidArgumentError(`${JSON.stringify(value.slice(0, 100))} holds a lone surrogate and has no UTF-8 form`);
  return Buffer.from(value, "utf8");
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(strictUtf8(value)).digest();
}

/** The top 1..32 bits of a digest as a number. */
function top32(digest: Buffer, bits: number): number {
  return Math.floor(digest.readUInt32BE(0) / 2 ** (32 - bits));
}

/**
 * `consistent_hash(value, bits)`: the top `bits` (1..256) bits of
 * SHA-256(UTF-8 of value). A number for up to 32 bits, a bigint above.
 */
export function consistentHash(value: string, bits: number): number | bigint {
  checkBits(bits, 256);
  const digest = sha256(value);
  if (bits <= 32) return top32(digest, bits);
  return BigInt(`0x${digest.toString("hex")}`) >> BigInt(256 - bits);
}

/** The shard (0 .. 2^bits - 1) of a name: `consistentHash(name, bits)` for bits 1..32. */
export function shardFromName(name: string, bits: number): number {
  checkBits(bits, 32);
  return top32(sha256(name), bits);
}
