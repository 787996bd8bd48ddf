/**
 * Helpers to build DES archives in memory (DesWriter + MemorySink) and to open
 * them (MemorySource or a guarded source that records every range asked of it).
 */
import { Readable } from "node:stream";
import { DesReader } from "../../src/read/reader.js";
import type { ReaderOptions } from "../../src/read/reader.js";
import { DesWriter } from "../../src/write/writer.js";
import type { AddOptions, EntryData, WriterOptions } from "../../src/write/writer.js";
import { MemorySink } from "../../src/sinks/memory.js";
import { MEMORY_HINTS } from "../../src/io/source.js";
import { MemorySource } from "../../src/sources/memory.js";
import type { RangeSource, ReadHints } from "../../src/io/source.js";
import { DES_ERROR_CODES, DesError, DesFormatError, throwIfAborted } from "../../src/errors.js";
import type { Compression } from "../../src/format/constants.js";

/** How a body is handed to `add`. */
export type BodyForm = "bytes" | "readable" | "iterable";

export interface EntrySpec {
  name: string;
  data: Uint8Array;
  /** v2: any MessagePack value; v1: a plain object. `undefined` = no meta. */
  meta?: unknown;
  compress?: Compression;
  form?: BodyForm;
  /** Chunk boundaries for stream forms (sizes; the remainder is one last chunk). */
  chunks?: readonly number[];
}

/** Splits bytes into chunks of the given sizes (cycled), always covering every byte. */
export function splitChunks(data: Uint8Array, sizes: readonly number[] = [4096]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  let i = 0;
  const usable = sizes.filter((s) => s > 0);
  if (usable.length === 0) return data.length > 0 ? [data] : [];
  while (at < data.length) {
    const n = usable[i++ % usable.length]!;
    out.push(data.subarray(at, Math.min(data.length, at + n)));
    at += n;
  }
  return out;
}

/** The body in the requested form. Fresh every call: streams can be consumed once. */
export function bodyOf(e: EntrySpec): EntryData {
  switch (e.form ?? "bytes") {
    case "bytes":
      return e.data;
    case "readable":
      return Readable.from(
        splitChunks(e.data, e.chunks).map((c) => Buffer.from(c)),
        { objectMode: false },
      );
    case "iterable": {
      const parts = splitChunks(e.data, e.chunks);
      return (async function* () {
        for (const p of parts) {
          await Promise.resolve();
          yield p;
        }
      })();
    }
  }
}

/** Writes the entries, in order, into an in-memory archive and returns its bytes. */
export async function buildArchive(entries: readonly EntrySpec[], opts: WriterOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, opts);
  try {
    for (const e of entries) {
      const add: AddOptions = {};
      if (e.meta !== undefined) add.meta = e.meta;
      if (e.compress !== undefined) add.compress = e.compress;
      await w.add(e.name, bodyOf(e), add);
    }
  } catch (err) {
    await w.abort();
    throw err;
  }
  await w.close();
  return sink.bytes();
}

/** Opens bytes through a fresh counting MemorySource. */
export async function openArchive(
  bytes: Uint8Array,
  opts: ReaderOptions = {},
): Promise<{ reader: DesReader; source: MemorySource }> {
  const source = new MemorySource(bytes);
  const reader = await DesReader.open(source, opts);
  return { reader, source };
}

/** Collects a Readable (or any async iterable of bytes) into one Uint8Array. */
export async function collect(stream: AsyncIterable<unknown>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c as Uint8Array);
  return new Uint8Array(Buffer.concat(parts));
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Unsigned bytewise comparison of the UTF-8 encodings (the order of `list()` in v2). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

export function hex(b: Uint8Array, max = 32): string {
  const s = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, max)).toString("hex");
  return b.length > max ? `${s}...(${b.length} bytes)` : s;
}

/** A canonical rendering of a meta value that tells apart everything a caller could (types, -0, binary, Map order). */
export function canon(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return String(v);
    case "number":
      return Object.is(v, -0) ? "n:-0" : `n:${v}`;
    case "bigint":
      return `b:${v}`;
    case "string":
      return JSON.stringify(v);
  }
  if (v instanceof Uint8Array) return `bin:${hex(v, Infinity)}`;
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v instanceof Map) return `map{${[...v].map(([k, x]) => `${canon(k)}:${canon(x)}`).join(",")}}`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
    .join(",")}}`;
}

// ---------------------------------------------------------------------------
// Footers, parsed independently of src/ so tests do not trust the code under test
// ---------------------------------------------------------------------------

export interface V2FooterFields {
  pageBits: number;
  dataStart: number;
  dataLength: number;
  metaStart: number;
  metaLength: number;
  indexStart: number;
  indexLength: number;
  entryCount: number;
  archiveLength: number;
}

export function parseV2Footer(archive: Uint8Array): V2FooterFields {
  const f = Buffer.from(archive.buffer, archive.byteOffset + archive.length - 128, 128);
  const u64 = (at: number): number => Number(f.readBigUInt64LE(at));
  return {
    pageBits: f[9]!,
    dataStart: u64(16),
    dataLength: u64(24),
    metaStart: u64(32),
    metaLength: u64(40),
    indexStart: u64(48),
    indexLength: u64(56),
    entryCount: u64(64),
    archiveLength: u64(80),
  };
}

export interface V1FooterFields {
  dataStart: number;
  dataLength: number;
  metaStart: number;
  metaLength: number;
  indexStart: number;
  indexLength: number;
  fileCount: number;
}

export function parseV1Footer(archive: Uint8Array): V1FooterFields {
  const f = Buffer.from(archive.buffer, archive.byteOffset + archive.length - 72, 72);
  const u64 = (at: number): number => Number(f.readBigUInt64LE(at));
  return {
    dataStart: u64(16),
    dataLength: u64(24),
    metaStart: u64(32),
    metaLength: u64(40),
    indexStart: u64(48),
    indexLength: u64(56),
    fileCount: u64(64),
  };
}

// ---------------------------------------------------------------------------
// Typed errors
// ---------------------------------------------------------------------------

/** The documented codes (src/errors.ts is their one list). */
export const DES_CODE_SET: ReadonlySet<string> = new Set<string>(DES_ERROR_CODES);

export function isTypedDesError(e: unknown): e is DesError {
  return e instanceof DesError && DES_CODE_SET.has(e.code);
}

export function describeError(e: unknown): string {
  if (e instanceof Error)
    return `${e.constructor.name}${(e as { code?: unknown }).code ? `[${String((e as { code?: unknown }).code)}]` : ""}: ${e.message}\n${e.stack ?? ""}`;
  return `non-error thrown: ${String(e)}`;
}

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

/** A MemorySource that also records the length of every read (readTail included). */
export class RecordingSource extends MemorySource {
  readonly lengths: number[] = [];
  override async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.lengths.push(length);
    return super.read(offset, length, signal);
  }
}

/**
 * A read-only view of an archive after a mutation, without copying the
 * original: `base` (possibly a sub-view: truncated or chopped) with byte
 * patches, then `suffix` (appended garbage). Every read is checked: a reader
 * that asks for a range past the end, a negative or non-integer range, or more
 * bytes than the whole source holds is recorded in `violations` (and gets a
 * typed error back, so the violation cannot be hidden by a reader that
 * tolerates errors: the test checks `violations`).
 */
export class GuardedSource implements RangeSource {
  readonly key: string;
  readonly size: number;
  readonly hints: ReadHints;
  readonly violations: string[] = [];
  readonly stats = { reads: 0, bytesRead: 0, maxRead: 0 };
  private readonly base: Uint8Array;
  private readonly patches: ReadonlyMap<number, number>;
  private readonly suffix: Uint8Array;

  constructor(
    base: Uint8Array,
    patches: ReadonlyMap<number, number> = new Map(),
    suffix: Uint8Array = new Uint8Array(0),
    opts: { key?: string; hints?: ReadHints } = {},
  ) {
    this.base = base;
    this.patches = patches;
    this.suffix = suffix;
    this.size = base.length + suffix.length;
    this.key = opts.key ?? "guarded:";
    this.hints = opts.hints ?? MEMORY_HINTS;
  }

  /** The whole mutated archive as one buffer (a copy), for diagnostics and small archives. */
  materialize(): Uint8Array {
    const out = new Uint8Array(this.size);
    out.set(this.base, 0);
    out.set(this.suffix, this.base.length);
    for (const [at, v] of this.patches) out[at] = v;
    return out;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      this.violations.push(`read(${offset}, ${length}): not a valid range`);
      throw new DesFormatError(`guarded source: invalid range ${offset}+${length}`);
    }
    if (length > this.size) {
      this.violations.push(`read(${offset}, ${length}): asks for more than the source's ${this.size} bytes`);
      throw new DesFormatError(`guarded source: ${length} bytes asked of a ${this.size}-byte source`);
    }
    if (offset + length > this.size) {
      this.violations.push(`read(${offset}, ${length}): range past the end (${this.size} bytes)`);
      throw new DesFormatError(`guarded source: range ${offset}+${length} past the end`);
    }
    this.stats.reads++;
    this.stats.bytesRead += length;
    this.stats.maxRead = Math.max(this.stats.maxRead, length);
    return this.slice(offset, length);
  }

  /** The mutated bytes at a range, for the test's own checks: not counted, not guarded; undefined when out of range. */
  peek(offset: number, length: number): Uint8Array | undefined {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.size
    )
      return undefined;
    return this.slice(offset, length);
  }

  private slice(offset: number, length: number): Uint8Array {
    const end = offset + length;
    let touched = end > this.base.length;
    if (!touched) {
      for (const at of this.patches.keys()) {
        if (at >= offset && at < end) {
          touched = true;
          break;
        }
      }
    }
    // Readers may keep what a source returns: hand out copies when patched, views otherwise (like MemorySource).
    if (!touched) return this.base.subarray(offset, end);
    const out = new Uint8Array(length);
    if (offset < this.base.length) out.set(this.base.subarray(offset, Math.min(end, this.base.length)), 0);
    if (end > this.base.length) {
      const s0 = Math.max(0, offset - this.base.length);
      out.set(this.suffix.subarray(s0, end - this.base.length), Math.max(0, this.base.length - offset));
    }
    for (const [at, v] of this.patches) if (at >= offset && at < end) out[at - offset] = v;
    return out;
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number }> {
    if (!Number.isSafeInteger(length) || length < 0) {
      this.violations.push(`readTail(${length}): not a valid length`);
      throw new DesFormatError(`guarded source: invalid tail length ${length}`);
    }
    const n = Math.min(length, this.size);
    return { bytes: await this.read(this.size - n, n, signal), size: this.size };
  }
}

// ---------------------------------------------------------------------------
// Determinism and time limits
// ---------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32): the same seed gives the same cases. */
export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export class TimeoutError extends Error {}

/** Rejects with TimeoutError when `p` takes longer than `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
