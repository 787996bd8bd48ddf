import { encodeMetaV2 } from "./meta.js";

/**
 * File-system metadata of an entry (spec: "File-system metadata"): kind, permission bits,
 * modification time, owner and hard links, carried in the entry's meta
 * under the reserved key `des:fs`.
 */

/** The reserved top-level meta key. */
export const FS_META_KEY = "des:fs";

export type FsKind = "file" | "directory" | "symlink" | "hardlink";

export interface FsMeta {
  readonly kind: FsKind;
  /** Permission bits, `st_mode & 0o7777`. */
  readonly mode: number;
  /** Modification time: whole seconds since the epoch, plus nanoseconds. */
  readonly mtimeSeconds: number;
  readonly mtimeNanos: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Hard links: the name of the entry this one is a second name for. */
  readonly linkTo?: string;
}

const KIND_CODE: Record<FsKind, string> = { file: "f", directory: "d", symlink: "l", hardlink: "h" };
const CODE_KIND: Record<string, FsKind> = { f: "file", d: "directory", l: "symlink", h: "hardlink" };

/** The meta value (a plain object) that carries `m`, ready to pass as an entry's meta. */
export function fsMetaValue(m: FsMeta): { [FS_META_KEY]: Record<string, string | number> } {
  const v: Record<string, string | number> = { k: KIND_CODE[m.kind], m: m.mode, t: m.mtimeSeconds };
  if (m.mtimeNanos !== 0) v.n = m.mtimeNanos;
  if (m.uid !== undefined) v.u = m.uid;
  if (m.gid !== undefined) v.g = m.gid;
  if (m.kind === "hardlink" && m.linkTo !== undefined) v.h = m.linkTo;
  return { [FS_META_KEY]: v };
}

/** Splits a time in milliseconds (as `fs.Stats.mtimeMs` gives it) into seconds and nanoseconds. */
export function splitMs(ms: number): { mtimeSeconds: number; mtimeNanos: number } {
  const s = Math.floor(ms / 1000);
  const nanos = Math.round((ms - s * 1000) * 1e6);
  return nanos >= 1e9 ? { mtimeSeconds: s + 1, mtimeNanos: 0 } : { mtimeSeconds: s, mtimeNanos: Math.max(0, nanos) };
}

function int(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  return undefined;
}

function field(map: unknown, key: string): unknown {
  if (map instanceof Map) return map.get(key);
  if (map !== null && typeof map === "object" && !Array.isArray(map) && !(map instanceof Uint8Array)) {
    return Object.prototype.hasOwnProperty.call(map, key) ? (map as Record<string, unknown>)[key] : undefined;
  }
  return undefined;
}

/**
 * The file-system metadata in an entry's meta, or undefined when there is
 * none or it is malformed (spec: malformed metadata is absent, never an error).
 */
export function decodeFsMeta(meta: unknown): FsMeta | undefined {
  const v = field(meta, FS_META_KEY);
  if (v === undefined) return undefined;
  const k = field(v, "k");
  const kind = typeof k === "string" ? CODE_KIND[k] : undefined;
  const mode = int(field(v, "m"));
  const t = int(field(v, "t"));
  const rawN = field(v, "n");
  const n = rawN === undefined ? 0 : int(rawN);
  if (
    !kind ||
    mode === undefined ||
    mode < 0 ||
    mode > 0o7777 ||
    t === undefined ||
    n === undefined ||
    n < 0 ||
    n > 999_999_999
  )
    return undefined;
  const out: { -readonly [K in keyof FsMeta]: FsMeta[K] } = { kind, mode, mtimeSeconds: t, mtimeNanos: n };
  const u = int(field(v, "u"));
  const g = int(field(v, "g"));
  if (u !== undefined && u >= 0) out.uid = u;
  if (g !== undefined && g >= 0) out.gid = g;
  if (kind === "hardlink") {
    const h = field(v, "h");
    if (typeof h !== "string" || h.length === 0) return undefined;
    out.linkTo = h;
  }
  return out;
}

/** Modification time in milliseconds (what `fs.utimes` takes, as seconds: divide by 1000). */
export function mtimeMsOf(m: FsMeta): number {
  return m.mtimeSeconds * 1000 + m.mtimeNanos / 1e6;
}

const U32 = 0x100000000;
/** MessagePack of the map key `des:fs` (fixstr) and of the one-letter keys. */
const FS_KEY_BYTES = [0xa6, ...Array.from(FS_META_KEY, (c) => c.charCodeAt(0))];
const KIND_BYTE: Record<FsKind, number> = { file: 0x66, directory: 0x64, symlink: 0x6c, hardlink: 0x68 };

/** An unsigned integer as MessagePack writes it (fixint, uint8, uint16, uint32); `at` after it. */
function putUint(out: Uint8Array, at: number, v: number): number {
  if (v < 0x80) out[at++] = v;
  else if (v < 0x100) {
    out[at++] = 0xcc;
    out[at++] = v;
  } else if (v < 0x10000) {
    out[at++] = 0xcd;
    out[at++] = v >>> 8;
    out[at++] = v & 0xff;
  } else {
    out[at++] = 0xce;
    out[at++] = v >>> 24;
    out[at++] = (v >>> 16) & 0xff;
    out[at++] = (v >>> 8) & 0xff;
    out[at++] = v & 0xff;
  }
  return at;
}

function smallUint(v: number | undefined): boolean {
  return v === undefined || (Number.isInteger(v) && v >= 0 && v < U32);
}

/**
 * The v2 meta bytes of `fsMetaValue(m)`, exactly as `encodeMetaV2` writes
 * them, without building the value: packing a tree encodes one per file.
 * Written directly when every number is an integer in [0, 2^32) and there
 * is no hard-link name; otherwise (times before 1970, a hard link) through
 * `encodeMetaV2` itself.
 */
export function encodeFsMetaV2(m: FsMeta): Uint8Array {
  const { kind, mode, mtimeSeconds: t, mtimeNanos: n, uid, gid } = m;
  if (kind === "hardlink" || !smallUint(mode) || !smallUint(t) || !smallUint(n) || !smallUint(uid) || !smallUint(gid))
    return encodeMetaV2(fsMetaValue(m));
  const out = new Uint8Array(48);
  let at = 0;
  out[at++] = 0x81;
  for (const b of FS_KEY_BYTES) out[at++] = b;
  out[at++] = 0x83 + (n !== 0 ? 1 : 0) + (uid !== undefined ? 1 : 0) + (gid !== undefined ? 1 : 0);
  out[at++] = 0xa1;
  out[at++] = 0x6b; // "k"
  out[at++] = 0xa1;
  out[at++] = KIND_BYTE[kind];
  out[at++] = 0xa1;
  out[at++] = 0x6d; // "m"
  at = putUint(out, at, mode);
  out[at++] = 0xa1;
  out[at++] = 0x74; // "t"
  at = putUint(out, at, t);
  if (n !== 0) {
    out[at++] = 0xa1;
    out[at++] = 0x6e; // "n"
    at = putUint(out, at, n);
  }
  if (uid !== undefined) {
    out[at++] = 0xa1;
    out[at++] = 0x75; // "u"
    at = putUint(out, at, uid);
  }
  if (gid !== undefined) {
    out[at++] = 0xa1;
    out[at++] = 0x67; // "g"
    at = putUint(out, at, gid);
  }
  return out.subarray(0, at);
}
