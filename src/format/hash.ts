import type { XXHashAPI } from "xxhash-wasm";
import { DesInvalidArgumentError, DesIoError } from "../errors.js";
import { instantiateSync } from "./xxhash-sync.js";

let api: XXHashAPI | undefined;
let triedSync = false;
let loading: Promise<XXHashAPI> | undefined;
const WARM_UP = new Uint8Array(16);

/**
 * The xxhash WebAssembly module, instantiated once per process on first use,
 * synchronously from its embedded bytes (a fraction of a millisecond; see
 * xxhash-sync.ts), so importing the library compiles nothing and the first
 * hash waits for no background compile.
 */
function syncApi(): XXHashAPI | undefined {
  if (api || triedSync) return api;
  triedSync = true;
  const a = instantiateSync();
  if (a) warmUp(a);
  return (api = a);
}

/**
 * Loads the xxhash module once per process; every reader and writer awaits
 * it on open. Resolves at once where it compiles synchronously (everywhere
 * WebAssembly is enabled); otherwise falls back to the package's own
 * asynchronous loader, loaded on demand, whose error is the caller's.
 */
export async function loadHasher(): Promise<XXHashAPI> {
  const a = syncApi();
  if (a) return a;
  loading ??= import("xxhash-wasm")
    .then((m) => m.default())
    .then(
      (x) => {
        warmUp(x);
        return (api = x);
      },
      (e: unknown) => {
        loading = undefined; // the next caller tries again and sees the error
        throw new DesIoError(`cannot load the xxhash WebAssembly module: ${(e as Error).message}`, { cause: e });
      },
    );
  return loading;
}

/** The first call of each function compiles it and sets up its BigInt conversions (~0.3 ms): paid once, before the first hash. */
function warmUp(a: XXHashAPI): void {
  a.h64Raw(WARM_UP, 0n);
  a.create64(0n).update(WARM_UP).digest();
}

/** Whether the module is instantiated already (instantiates nothing). */
export function hasherLoaded(): boolean {
  return api !== undefined;
}

/** Whether the module is ready now (the first open then waits for nothing). */
export function hasherReady(): boolean {
  return syncApi() !== undefined;
}

function hasher(): XXHashAPI {
  const a = api ?? syncApi();
  if (!a) throw new DesInvalidArgumentError("xxhash is not loaded: call loadHasher() first");
  return a;
}

/** xxh64 with seed 0, the only checksum and name hash of the v2 format. */
export function xxh64(bytes: Uint8Array): bigint {
  return hasher().h64Raw(bytes, 0n);
}

export interface StreamingHash {
  update(bytes: Uint8Array): void;
  digest(): bigint;
}

export function xxh64Stream(): StreamingHash {
  const h = hasher().create64(0n);
  return {
    update(bytes) {
      h.update(bytes);
    },
    digest() {
      return h.digest();
    },
  };
}
