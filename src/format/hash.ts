import type { XXHashAPI } from "xxhash-wasm";
import { DesInvalidArgumentError } from "../errors.js";
import { instantiateSync } from "./xxhash-sync.js";

let api: XXHashAPI | undefined;
let loading: Promise<XXHashAPI> | undefined;
const WARM_UP = new Uint8Array(16);

/**
 * Loads the xxhash WebAssembly module once per process; every reader and
 * writer awaits it on open. It is instantiated synchronously when this
 * module is imported (see below and xxhash-sync.ts), so an open never waits
 * for a background compile; where that is not possible, loading starts at
 * import and an open finds it ready or nearly so.
 */
export async function loadHasher(): Promise<XXHashAPI> {
  if (api) return api;
  // The package's own loader is needed only where the synchronous path below
  // failed: imported then, so a process that never needs it never parses it.
  loading ??= import("xxhash-wasm")
    .then((m) => m.default())
    .then(
      (a) => {
        warmUp(a);
        return (api = a);
      },
      (e: unknown) => {
        loading = undefined; // the next caller tries again and sees the error
        throw e;
      },
    );
  return loading;
}

// At import: synchronously where the module file is found (a fraction of a
// millisecond, no background thread to wait for), else start the package's
// asynchronous loader so that compiling overlaps whatever the process does
// before its first open. A failure of the latter is not lost: the next
// loadHasher() call retries and throws it to its caller.
api = instantiateSync();
if (api) warmUp(api);
else loadHasher().catch(() => undefined);

/** The first call of each function compiles it and sets up its BigInt conversions (~0.3 ms): paid here, off the first lookup's path. */
function warmUp(a: XXHashAPI): void {
  a.h64Raw(WARM_UP, 0n);
  a.create64(0n).update(WARM_UP).digest();
}

/** Whether the module is ready now (the first open then waits for nothing). */
export function hasherReady(): boolean {
  return api !== undefined;
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
