import { Encoder } from "@msgpack/msgpack";
import { ByteWriter } from "./bytes.js";
import { bomKeepingDecoder } from "./msgpack-decoder.js";
import { DesFormatError, DesInvalidArgumentError } from "../errors.js";
import { pyJsonLoads } from "./v1/pyjson.js";
import type { PyJsonMapValue, PyJsonValue } from "./v1/pyjson.js";
import type { MetaV1Options, MetaValue } from "./meta.js";

/**
 * The meta codecs: MessagePack (v2, on @msgpack/msgpack) and Python JSON
 * (v1). Loaded on first use through `loadMetaCodec()` in meta.ts, so that
 * reading bodies (an S3 open + get in a Lambda, say) never loads them.
 */

/** Leaves (numbers, strings, bigints, binary, dates, nil) are encoded by @msgpack/msgpack itself. */
const leafEncoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
// Keeps a leading U+FEFF in strings and keys (the library's own decoder drops it above 200 bytes).
const decoder = bomKeepingDecoder({ useBigInt64: true });

/** The @msgpack/msgpack encoder's own nesting limit (its default maxDepth), kept so the same values are accepted. */
const MAX_META_DEPTH = 100;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Encodes v2 meta (spec 3.3). Containers are written here, leaves by
 * @msgpack/msgpack, so the bytes are exactly that library's for plain
 * objects and arrays, and a `Map` becomes a MessagePack map with its
 * entries in insertion order (that library would write `{}`). Refuses,
 * with DesInvalidArgumentError, anything that would not read back as
 * written: Set, WeakMap, Error, Promise, functions, symbols, class
 * instances, typed arrays other than Uint8Array, an invalid Date, bigints
 * beyond 64 bits, map keys that are not strings or numbers or are
 * `__proto__`, and nesting deeper than 100 levels (cycles included).
 */
export function encodeMetaV2(meta: unknown): Uint8Array {
  const w = new ByteWriter(64);
  try {
    writeValue(w, meta, 1);
  } catch (e) {
    // A getter or proxy that throws must not leak a foreign error type.
    if (e instanceof DesInvalidArgumentError) throw e;
    refuse((e as Error)?.message ?? String(e));
  }
  return w.finish();
}

function refuse(what: string): never {
  throw new DesInvalidArgumentError(`meta cannot be stored as MessagePack: ${what}`);
}

function writeLeaf(w: ByteWriter, v: unknown): void {
  w.bytes(leafEncoder.encodeSharedRef(v));
}

function header(w: ByteWriter, n: number, fix: number, m16: number, m32: number): void {
  if (n < 16) w.u8(fix + n);
  else if (n < 0x10000)
    w.u8(m16)
      .u8(n >> 8)
      .u8(n & 0xff);
  else
    w.u8(m32)
      .u8(n >>> 24)
      .u8((n >>> 16) & 0xff)
      .u8((n >>> 8) & 0xff)
      .u8(n & 0xff);
}

function writeKey(w: ByteWriter, k: unknown): void {
  if (k === "__proto__") refuse('the map key "__proto__" cannot be read back');
  if (typeof k !== "string" && typeof k !== "number") refuse(`a map key of type ${typeof k} cannot be read back`);
  writeLeaf(w, k);
}

function writeValue(w: ByteWriter, v: unknown, depth: number): void {
  if (depth > MAX_META_DEPTH) refuse(`nesting deeper than ${MAX_META_DEPTH} levels (or a cycle)`);
  switch (typeof v) {
    case "undefined":
    case "boolean":
    case "number":
    case "string":
      writeLeaf(w, v);
      return;
    case "bigint":
      if (v < INT64_MIN || v > UINT64_MAX) refuse(`the bigint ${v} is outside the 64-bit range MessagePack can hold`);
      writeLeaf(w, v);
      return;
    case "object":
      break;
    default:
      refuse(`a ${typeof v} cannot be stored`);
  }
  if (v === null || v instanceof Uint8Array) return writeLeaf(w, v);
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) refuse("an invalid Date cannot be stored");
    return writeLeaf(w, v);
  }
  if (Array.isArray(v)) {
    header(w, v.length, 0x90, 0xdc, 0xdd);
    for (let i = 0; i < v.length; i++) writeValue(w, v[i], depth + 1);
    return;
  }
  if (v instanceof Map) {
    let n = 0;
    for (const x of v.values()) if (x !== undefined) n++;
    header(w, n, 0x80, 0xde, 0xdf);
    for (const [k, x] of v) {
      if (x === undefined) continue;
      writeKey(w, k);
      writeValue(w, x, depth + 1);
    }
    return;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    const ctor = (v as { constructor?: { name?: unknown } }).constructor;
    const kind = typeof ctor?.name === "string" && ctor.name ? ctor.name : "a class instance";
    refuse(`${kind} is not a plain object, array, Map, Uint8Array or Date, and would not read back as written`);
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  let n = 0;
  for (const k of keys) if (o[k] !== undefined) n++;
  header(w, n, 0x80, 0xde, 0xdf);
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    writeKey(w, k);
    writeValue(w, x, depth + 1);
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

export function decodeMetaV1(bytes: Uint8Array, name: string, opts?: { readonly maps?: false }): PyJsonValue;
export function decodeMetaV1(bytes: Uint8Array, name: string, opts: MetaV1Options): PyJsonValue | PyJsonMapValue;
export function decodeMetaV1(bytes: Uint8Array, name: string, opts: MetaV1Options = {}): PyJsonValue | PyJsonMapValue {
  try {
    return pyJsonLoads(bytes, { maps: opts.maps === true });
  } catch (e) {
    throw new DesFormatError(`meta of ${JSON.stringify(name)} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
