import { instantiateExports } from "./xxhash-sync.js";
import type { Exports } from "./xxhash-sync.js";
import { xxh64 } from "./hash.js";

const PAGE = 65536;
const MASK_64 = 2n ** 64n - 1n;

/**
 * Memory for bytes that are read only to be checked and copied (repack,
 * merge): the memory of an xxhash WebAssembly instance of its own, so that
 * what is read into it is hashed where it lies, without first being copied
 * into the hasher's memory (for a repack, that copy cost more than the
 * hashing). The memory is sized once and never grows, so views of it stay
 * valid (growing would detach them).
 */
export class HashArena {
  private readonly exports: Exports;
  /** The arena's bytes; `view(offset, length)` hands out parts of it. */
  readonly memory: Uint8Array;

  private constructor(exports: Exports, bytes: number) {
    this.exports = exports;
    const mem = exports.mem;
    const pages = Math.ceil(bytes / PAGE) - mem.buffer.byteLength / PAGE;
    if (pages > 0) mem.grow(pages);
    this.memory = new Uint8Array(mem.buffer);
  }

  /** An arena of at least `bytes` bytes; undefined where WebAssembly cannot provide one (callers then copy to hash). */
  static create(bytes: number): HashArena | undefined {
    try {
      return new HashArena(instantiateExports(), bytes);
    } catch {
      return undefined;
    }
  }

  get size(): number {
    return this.memory.length;
  }

  /** `length` bytes of the arena at `offset`. */
  view(offset: number, length: number): Uint8Array {
    return this.memory.subarray(offset, offset + length);
  }

  /** xxh64 (seed 0) of `bytes`: in place when they are a view of this arena, else through the shared hasher (a copy). */
  xxh64(bytes: Uint8Array): bigint {
    if (bytes.buffer === this.memory.buffer)
      return this.exports.xxh64(bytes.byteOffset, bytes.byteLength, 0n) & MASK_64;
    return xxh64(bytes);
  }
}
