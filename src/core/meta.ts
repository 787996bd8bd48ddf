import { Decoder, Encoder } from "@msgpack/msgpack";
import { DesFormatError, DesInvalidArgumentError } from "./errors.js";
import { pyJsonLoads } from "./pyjson.js";
import type { PyJsonValue } from "./pyjson.js";

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
const decoder = new Decoder({ useBigInt64: true });

export function encodeMetaV2(meta: unknown): Uint8Array {
  try {
    return encoder.encode(meta);
  } catch (e) {
    throw new DesInvalidArgumentError(`meta cannot be encoded as MessagePack: ${(e as Error).message}`);
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
