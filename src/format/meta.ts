import { DesInvalidArgumentError, DesIoError } from "../errors.js";
import type * as Codec from "./meta-codec.js";
import type { PyJsonMapValue, PyJsonValue } from "./v1/pyjson.js";

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
  | Date
  | MetaValue[]
  | { [key: string]: MetaValue }
  | PyJsonValue
  | PyJsonMapValue;

export interface MetaV1Options {
  /** Objects as Maps in document order, so a read-modify-write keeps Python's key order and integer-like keys. */
  readonly maps?: boolean;
}

/*
 * The codecs (MessagePack for v2, Python JSON for v1, meta-codec.ts) are
 * loaded on first use: reading and writing bodies never needs them, and
 * @msgpack/msgpack is most of the code a reader would otherwise load at
 * start (a cold Lambda pays for every byte it parses). Every asynchronous
 * path that encodes or decodes meta awaits `loadMetaCodec()` first (writers
 * when they are created, readers before the first meta they decode), so the
 * synchronous functions below find it loaded.
 */
let codec: typeof Codec | undefined;
let loading: Promise<void> | undefined;

/** Loads the meta codecs once per process; resolves at once when they are loaded. */
export function loadMetaCodec(): Promise<void> {
  if (codec) return READY;
  loading ??= import("./meta-codec.js").then(
    (m) => {
      codec = m;
    },
    (e: unknown) => {
      loading = undefined; // the next caller tries again and sees the error
      throw new DesIoError(
        `cannot load des-pack's meta codec module (an incomplete install or bundle?): ${(e as Error).message}`,
        { cause: e },
      );
    },
  );
  return loading;
}

const READY = Promise.resolve();

/** Whether the codecs are loaded (a caller on a hot path skips the await). */
export function metaCodecReady(): boolean {
  return codec !== undefined;
}

function loaded(): typeof Codec {
  if (!codec) throw new DesInvalidArgumentError("the meta codec is not loaded: call loadMetaCodec() first");
  return codec;
}

/**
 * Encodes v2 meta (spec 3.3): the bytes of @msgpack/msgpack for plain objects
 * and arrays, a `Map` as a MessagePack map in insertion order; refuses, with
 * DesInvalidArgumentError, anything that would not read back as written (see
 * meta-codec.ts).
 */
export function encodeMetaV2(meta: unknown): Uint8Array {
  return loaded().encodeMetaV2(meta);
}

export function decodeMetaV2(bytes: Uint8Array, name: string): MetaValue {
  return loaded().decodeMetaV2(bytes, name);
}

export function decodeMetaV1(bytes: Uint8Array, name: string, opts?: { readonly maps?: false }): PyJsonValue;
export function decodeMetaV1(bytes: Uint8Array, name: string, opts: MetaV1Options): PyJsonValue | PyJsonMapValue;
export function decodeMetaV1(bytes: Uint8Array, name: string, opts: MetaV1Options = {}): PyJsonValue | PyJsonMapValue {
  return loaded().decodeMetaV1(bytes, name, opts);
}
