import { DesInvalidArgumentError } from "../errors.js";
import type { Compression } from "../format/constants.js";
import type { ExternalStore } from "../io/external.js";

export interface WriterOptions {
  /** 2 (default) or 1 for archives the Python DES reads. */
  format?: 1 | 2;
  /** Replace an existing file at the target. Default false (DesExistsError). */
  overwrite?: boolean;
  /** Default compression for entries (v2 only). Default "none". */
  compress?: Compression;
  /** gzip level (0-9) or brotli quality (0-11). Defaults: 6 and 5. */
  compressLevel?: number;
  /** Where bodies above `bigFileThreshold` go. Without a store every body is internal. */
  externalStore?: ExternalStore;
  /**
   * v2: bodies larger than this many bytes go to the external store. v1:
   * bodies of at least this many bytes (the Python writer's rule). Default
   * 100 MiB (the Python default).
   */
  bigFileThreshold?: number;
  /**
   * Prefix of external keys. v2: `<prefix>/_bigFiles/<name>` (trailing
   * slashes dropped). v1: joined exactly as the Python writer joins it,
   * `${prefix}/_bigFiles/${name}` (so `"pre/"` gives `pre//_bigFiles/...`).
   */
  externalPrefix?: string;
  /** Meta beyond this many bytes moves to a temporary file while data is written. Default 8 MiB. */
  metaMemoryLimit?: number;
}

export interface AddOptions {
  /** v2: any MessagePack value (see the spec, 3.3). v1: a plain object (or Map) of Python-JSON values. */
  meta?: unknown;
  /** Overrides the writer's default compression for this entry. */
  compress?: Compression;
  /** Length of the body. Required to match: for bytes and files it is checked before anything is written. */
  size?: number;
  /** Forces the body into the external store (or keeps it in, with false). */
  external?: boolean;
  /** Aborts this add (a stalled stream body too) with DesAbortedError. */
  signal?: AbortSignal;
}

export interface AddManyOptions {
  /** Overrides the writer's default compression for these entries. */
  compress?: Compression;
  signal?: AbortSignal;
}

export interface WriterStats {
  readonly location: string;
  readonly formatVersion: 1 | 2;
  readonly entries: number;
  readonly externalEntries: number;
  /** Bytes of DATA (stored, after compression). */
  readonly dataBytes: number;
  /** Original bytes of all bodies, external ones included. */
  readonly originalBytes: number;
  readonly metaBytes: number;
  readonly indexBytes: number;
  readonly indexPages: number;
  readonly archiveBytes: number;
}

/** The writer's options after validation, with every default filled in. */
export interface ResolvedOptions {
  readonly format: 1 | 2;
  readonly overwrite: boolean;
  readonly compress: Compression;
  readonly compressLevel: number | undefined;
  readonly externalStore: ExternalStore | undefined;
  readonly bigFileThreshold: number;
  readonly externalPrefix: string | undefined;
  readonly metaMemoryLimit: number;
}

const DEFAULT_BIG_FILE = 100 * 1024 * 1024;
const DEFAULT_META_MEMORY = 8 << 20;
const COMPRESSIONS: readonly Compression[] = ["none", "gzip", "brotli"];
/** The highest level each codec takes (gzip 9, brotli quality 11). */
const MAX_LEVEL = { none: 11, gzip: 9, brotli: 11 } as const;

/** A non-negative safe integer (or absent), else DesInvalidArgumentError naming the option. */
export function checkCount(what: string, v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new DesInvalidArgumentError(`${what} must be an integer from ${min} to ${max}, not ${describe(v)}`);
  }
  return v;
}

function checkBoolean(what: string, v: unknown): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  throw new DesInvalidArgumentError(`${what} must be true or false, not ${describe(v)}`);
}

/** A known codec that the archive's format can hold. */
export function checkCompression(v: unknown, format: 1 | 2, where: string): Compression {
  if (!COMPRESSIONS.includes(v as Compression)) {
    throw new DesInvalidArgumentError(`${where}: compress must be "none", "gzip" or "brotli", not ${describe(v)}`);
  }
  const c = v as Compression;
  if (format === 1 && c !== "none") throw new DesInvalidArgumentError("v1 archives cannot hold compressed entries");
  return c;
}

/** The level (if any) is one `codec` takes. */
export function checkLevel(codec: Compression, level: number | undefined): void {
  if (level !== undefined && codec !== "none" && level > MAX_LEVEL[codec]) {
    throw new DesInvalidArgumentError(`compressLevel ${level} is above ${codec}'s maximum of ${MAX_LEVEL[codec]}`);
  }
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint" || v === undefined || v === null)
    return String(v);
  return typeof v;
}

/** Validates every writer option before anything is created (DesInvalidArgumentError). */
export function resolveWriterOptions(opts: WriterOptions): ResolvedOptions {
  if (opts === null || typeof opts !== "object") throw new DesInvalidArgumentError("writer options must be an object");
  const format = opts.format ?? 2;
  if (format !== 1 && format !== 2) throw new DesInvalidArgumentError(`format must be 1 or 2, not ${describe(format)}`);
  const compress = checkCompression(opts.compress ?? "none", format, "DesWriter.create");
  const compressLevel = checkCount("compressLevel", opts.compressLevel, 0, MAX_LEVEL.none);
  checkLevel(compress, compressLevel);
  const store = opts.externalStore;
  if (store !== undefined && (store === null || typeof store !== "object" || typeof store.put !== "function")) {
    throw new DesInvalidArgumentError("externalStore must be an ExternalStore (an object with put, get and stream)");
  }
  if (opts.externalPrefix !== undefined && typeof opts.externalPrefix !== "string") {
    throw new DesInvalidArgumentError(`externalPrefix must be a string, not ${describe(opts.externalPrefix)}`);
  }
  return {
    format,
    overwrite: checkBoolean("overwrite", opts.overwrite) ?? false,
    compress,
    compressLevel,
    externalStore: store,
    bigFileThreshold: checkCount("bigFileThreshold", opts.bigFileThreshold) ?? DEFAULT_BIG_FILE,
    externalPrefix: opts.externalPrefix,
    metaMemoryLimit: checkCount("metaMemoryLimit", opts.metaMemoryLimit) ?? DEFAULT_META_MEMORY,
  };
}

/** What one add does, decided before anything is written. */
export interface AddPlan {
  readonly compression: Compression;
  readonly size: number | undefined;
  readonly external: boolean | undefined;
  readonly signal: AbortSignal | undefined;
}

/** Validates an add's (or addMany's) options against the writer's. */
export function resolveAddOptions(opts: AddOptions, w: ResolvedOptions): AddPlan {
  if (opts === null || typeof opts !== "object") throw new DesInvalidArgumentError("add options must be an object");
  const compression = opts.compress === undefined ? w.compress : checkCompression(opts.compress, w.format, "add");
  checkLevel(compression, w.compressLevel);
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new DesInvalidArgumentError("signal must be an AbortSignal");
  return {
    compression,
    size: checkCount("size", opts.size),
    external: checkBoolean("external", opts.external),
    signal,
  };
}
