import xxhash from "xxhash-wasm";
import type { XXHashAPI } from "xxhash-wasm";
import { DesInvalidArgumentError } from "../errors.js";

let api: XXHashAPI | undefined;
let loading: Promise<XXHashAPI> | undefined;

/**
 * Loads the xxhash WebAssembly module once per process; every reader and
 * writer awaits it on open. Loading starts when this module is imported (see
 * below), so an open finds it ready or nearly so instead of waiting behind
 * its own first read.
 */
export async function loadHasher(): Promise<XXHashAPI> {
  if (api) return api;
  loading ??= xxhash().then(
    (a) => (api = a),
    (e: unknown) => {
      loading = undefined; // the next caller tries again and sees the error
      throw e;
    },
  );
  return loading;
}

// Start instantiating at import: compiling the module overlaps whatever the
// process does before its first open. A failure here is not lost: the next
// loadHasher() call retries and throws it to its caller.
loadHasher().catch(() => undefined);

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
