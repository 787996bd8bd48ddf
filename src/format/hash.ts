import xxhash from "xxhash-wasm";
import type { XXHashAPI } from "xxhash-wasm";
import { DesInvalidArgumentError } from "../errors.js";

let api: XXHashAPI | undefined;
let loading: Promise<XXHashAPI> | undefined;

/** Loads the xxhash WebAssembly module once per process; every reader and writer awaits it on open. */
export async function loadHasher(): Promise<XXHashAPI> {
  if (api) return api;
  loading ??= xxhash().then((a) => (api = a));
  return loading;
}

function hasher(): XXHashAPI {
  if (!api) throw new DesInvalidArgumentError("xxhash is not loaded: call loadHasher() first");
  return api;
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
