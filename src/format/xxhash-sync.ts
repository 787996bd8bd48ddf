import type { XXHash, XXHashAPI } from "xxhash-wasm";
import { XXHASH_WASM_BASE64 } from "./xxhash-module.js";

/**
 * The xxhash WebAssembly module of the `xxhash-wasm` package, instantiated
 * synchronously on the calling thread, with the package's own API (the same
 * functions over the same module's exports, as in its `workerd` build).
 *
 * Why: `xxhash-wasm` instantiates asynchronously, and V8 compiles an
 * asynchronous WebAssembly module on a background thread. On a busy host
 * that thread may not run for milliseconds (tens to a hundred and more were
 * measured on a loaded 2-core VM), and the first open of a process waits for
 * it. Compiling this 3 KiB module synchronously takes a fraction of a
 * millisecond and waits for nothing. The module's bytes are embedded
 * (xxhash-module.ts): finding the package's file at run time cost more than
 * compiling it (a failed module resolution in a bundle is about 2 ms of CPU).
 *
 * Returns undefined when WebAssembly cannot compile it here (a runtime with
 * WebAssembly disabled): the caller then uses the package's asynchronous
 * loader, which reports why.
 */
export function instantiateSync(): XXHashAPI | undefined {
  try {
    const api = apiOf(instantiateExports());
    // A module that does not hash like xxh64 is not used.
    return api.h64Raw(new Uint8Array(0), 0n) === EMPTY_XXH64 ? api : undefined;
  } catch {
    return undefined;
  }
}

let compiled: object | undefined;

/** A new instance of the module (its own memory), compiled once per process; throws where WebAssembly cannot. */
export function instantiateExports(): Exports {
  const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
  compiled ??= new wasm.Module(Buffer.from(XXHASH_WASM_BASE64, "base64"));
  return new wasm.Instance(compiled).exports as Exports;
}

/** xxh64 of no bytes, seed 0. */
const EMPTY_XXH64 = 0xef46db3751d8e999n;

/** The parts of the WebAssembly global used here (the compiler's lib has no DOM types). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
}

export interface Exports {
  readonly mem: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  xxh32(ptr: number, len: number, seed: number): number;
  xxh64(ptr: number, len: number, seed: bigint): bigint;
  init32(ptr: number, seed: number): void;
  update32(state: number, ptr: number, len: number): void;
  digest32(state: number): number;
  init64(ptr: number, seed: bigint): void;
  update64(state: number, ptr: number, len: number): void;
  digest64(state: number): bigint;
}

const MASK_64 = 2n ** 64n - 1n;
const u32 = (x: number): number => x >>> 0;
const u64 = (x: bigint): bigint => x & MASK_64;

/** The API `xxhash-wasm` builds over the module's exports: input copied to memory offset 0 (or after a streaming state). */
function apiOf(e: Exports): XXHashAPI {
  const mem = e.mem;
  let heap = new Uint8Array(mem.buffer);
  const encoder = new TextEncoder();
  const room = (bytes: number, at: number): void => {
    if (mem.buffer.byteLength < bytes + at) {
      mem.grow(Math.ceil((bytes + at - mem.buffer.byteLength) / 65536));
      heap = new Uint8Array(mem.buffer);
    }
  };
  function streaming<T>(
    size: number,
    seed: T,
    init: (ptr: number, seed: T) => void,
    update: (state: number, ptr: number, len: number) => void,
    digest: (state: number) => T,
    finish: (x: T) => T,
  ): XXHash<T> {
    room(size, 0);
    const state = new Uint8Array(size);
    heap.set(state);
    init(0, seed);
    state.set(heap.subarray(0, size));
    const h: XXHash<T> = {
      update(input: string | Uint8Array): XXHash<T> {
        heap.set(state);
        let len: number;
        if (typeof input === "string") {
          room(3 * input.length, size);
          len = encoder.encodeInto(input, heap.subarray(size)).written;
        } else {
          room(input.byteLength, size);
          heap.set(input, size);
          len = input.byteLength;
        }
        update(0, size, len);
        state.set(heap.subarray(0, size));
        return h;
      },
      digest: (): T => {
        heap.set(state);
        return finish(digest(0));
      },
    };
    return h;
  }
  const h32 = (input: string, seed = 0): number => {
    room(3 * input.length, 0);
    return u32(e.xxh32(0, encoder.encodeInto(input, heap).written, seed));
  };
  const h64 = (input: string, seed = 0n): bigint => {
    room(3 * input.length, 0);
    return u64(e.xxh64(0, encoder.encodeInto(input, heap).written, seed));
  };
  return {
    h32,
    h32ToString: (input, seed = 0) => h32(input, seed).toString(16).padStart(8, "0"),
    h32Raw: (input, seed = 0) => {
      room(input.byteLength, 0);
      heap.set(input);
      return u32(e.xxh32(0, input.byteLength, seed));
    },
    create32: (seed = 0) => streaming(48, seed, e.init32, e.update32, e.digest32, u32),
    h64,
    h64ToString: (input, seed = 0n) => h64(input, seed).toString(16).padStart(16, "0"),
    h64Raw: (input, seed = 0n) => {
      room(input.byteLength, 0);
      heap.set(input);
      return u64(e.xxh64(0, input.byteLength, seed));
    },
    create64: (seed = 0n) => streaming(88, seed, e.init64, e.update64, e.digest64, u64),
  };
}
