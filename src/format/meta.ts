import { Encoder } from "@msgpack/msgpack";
import { bomKeepingDecoder } from "./msgpack-decoder.js";
import { DesFormatError, DesInvalidArgumentError } from "../errors.js";
import { pyJsonLoads } from "./v1/pyjson.js";
import type { PyJsonValue } from "./v1/pyjson.js";

/**
 * Meta is any MessagePack value in v2 (maps, arrays, binary, bigint, ...) and
 * a Python-JSON value in v1.
 */
export type MetaValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | MetaValue[]
  | { [key: string]: MetaValue }
  | PyJsonValue;

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
// Keeps a leading U+FEFF in strings and keys (the library's own decoder drops it above 200 bytes).
const decoder = bomKeepingDecoder({ useBigInt64: true });

export function encodeMetaV2(meta: unknown): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = encoder.encode(meta);
  } catch (e) {
    throw new DesInvalidArgumentError(`meta cannot be encoded as MessagePack: ${(e as Error).message}`);
  }
  // Only after a successful encode: the encoder has already refused cycles and
  // nesting deeper than its limit, so this walk terminates.
  checkReadable(meta);
  return bytes;
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Refuses what the encoder writes but cannot come back as written: a bigint
 * outside int64/uint64 (the encoder wraps it modulo 2^64 without a word), and
 * map keys the decoder rejects (`__proto__`, keys that are not strings or
 * numbers), which would make the entry's meta unreadable.
 */
function checkReadable(v: unknown): void {
  if (typeof v === "bigint") {
    if (v < INT64_MIN || v > UINT64_MAX) throw new DesInvalidArgumentError(`meta bigint ${v} is outside the 64-bit range MessagePack can hold`);
    return;
  }
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return;
  if (Array.isArray(v)) {
    for (const x of v) checkReadable(x);
    return;
  }
  if (v instanceof Map) {
    for (const [k, x] of v) {
      if ((typeof k !== "string" && typeof k !== "number") || k === "__proto__") {
        throw new DesInvalidArgumentError(`meta map key ${typeof k === "string" ? JSON.stringify(k) : `of type ${typeof k}`} cannot be read back from MessagePack`);
      }
      checkReadable(x);
    }
    return;
  }
  for (const k of Object.keys(v)) {
    if (k === "__proto__") throw new DesInvalidArgumentError('meta key "__proto__" cannot be read back from MessagePack');
    checkReadable((v as Record<string, unknown>)[k]);
  }
}

export function decodeMetaV2(bytes: Uint8Array, name: string): MetaValue {
  try {
    // Binary values decode as views of their input; a private copy keeps them from pinning a larger read buffer.
    return decoder.decode(new Uint8Array(bytes)) as MetaValue;
  } catch (e) {
    throw new DesFormatError(`meta of ${JSON.stringify(name)} is not valid MessagePack`, { cause: e });
  }
}

export function decodeMetaV1(bytes: Uint8Array, name: string): PyJsonValue {
  try {
    return pyJsonLoads(bytes);
  } catch (e) {
    throw new DesFormatError(`meta of ${JSON.stringify(name)} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}
