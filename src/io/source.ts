import { DesFormatError, DesInvalidArgumentError, DesIoError } from "../errors.js";
import { LOCAL_COST } from "./cost.js";
import type { CostModel } from "./cost.js";

/**
 * How a reader should batch reads on a medium. Remote stores want big merged
 * ranges (a request costs a round trip); local files want exact ones.
 */
export interface ReadHints {
  /** Merge two ranges when the bytes between them are at most this many. */
  readonly maxGap: number;
  /** Never build a merged read longer than this. */
  readonly maxSpan: number;
  /** Reads in flight at once. */
  readonly concurrency: number;
  /**
   * Bytes to read from the end at open. Where a request costs far more than
   * its bytes (S3, HTTP), 64 KiB: the root and often whole small indexes come
   * with the footer. On a local file, 8 KiB: the footer and a root of up to
   * 1,024 pages; a bigger root is then read exactly. Default 64 KiB.
   */
  readonly tailBytes?: number;
  /**
   * What a read costs on this medium. With it, batches are planned by cost
   * (src/read/plan.ts) instead of by maxGap / maxSpan, unless a reader or a
   * call sets maxGap or maxSpan.
   */
  readonly cost?: CostModel;
  /**
   * Whether readers learn this medium's cost from their own reads
   * (src/io/learn.ts): on for S3 and HTTP, whose latency and bandwidth
   * depend on where the client runs; absent (off) elsewhere. A reader's
   * `learnCost` option overrides it.
   */
  readonly learnCost?: boolean;
}

/**
 * Random access to the bytes of one archive. This small interface is the
 * whole I/O boundary: the reader parses, a source only fetches bytes.
 */
export interface RangeSource {
  /**
   * Where the bytes live (a path, `s3://bucket/key`, a URL). Stable across
   * processes, known without any I/O, so caches can key on it.
   */
  readonly key: string;
  /** Total size, when known without I/O; `readTail` always learns it. */
  readonly size: number | undefined;
  /** The medium's batching defaults. */
  readonly hints: ReadHints;
  /**
   * Exactly `length` bytes at `offset`. A source that gets fewer bytes than
   * asked must retry or throw; it never returns a short result.
   *
   * `version` is the token `readTail` returned for the opening this read
   * belongs to (the reader passes it back on every read). A versioned source
   * must serve the read from exactly that version or throw DesChangedError;
   * it must not fall back to a newer version it learned from a later
   * `readTail`, or a read planned from an old index could return new bytes.
   */
  read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array>;
  /**
   * The last `length` bytes (all of them when the source is smaller) and the
   * total size, in one request where the medium allows it (a suffix range).
   * Sources that pin a version (ETag) learn it here and return it as
   * `version`.
   */
  readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }>;
  /**
   * Optional: many ranges in one call, results in the same order, each its
   * own memory. For media where one call per range is the main cost (a
   * local file: a thread-pool round trip per read); the reader uses it for
   * batches and `read` for everything else. Same contract as `read` per range.
   */
  readMany?(
    ranges: readonly { offset: number; length: number }[],
    signal?: AbortSignal,
    version?: string,
  ): Promise<Uint8Array[]>;
  /**
   * Optional: the version token `readTail` would return now, for sources that
   * can tell it without a request (a local file: one `stat`). A reader opening
   * from a cached tail checks it against this, so an archive changed in place
   * (an append) is never served from the index of its previous version.
   */
  currentVersion?(signal?: AbortSignal): Promise<string | undefined>;
  /**
   * Optional: exactly `target.length` bytes at `offset`, written into
   * `target` (the caller's memory, reused from read to read) instead of a
   * fresh buffer. Same contract as `read` otherwise. Callers go through
   * `readInto` below, which falls back to `read` and a copy for sources
   * without it.
   */
  readInto?(offset: number, target: Uint8Array, signal?: AbortSignal, version?: string): Promise<void>;
  /**
   * Optional: the bytes at once, on the calling thread, when this source
   * answers without waiting (a local file opened with `syncReads`);
   * `undefined` when it cannot, and the caller then uses `read`. Same
   * contract as `read` otherwise (exact length, pinned to `version`); errors
   * are thrown, not returned. Lets a lookup and its body read run without a
   * promise in between.
   */
  readSync?(offset: number, length: number, version?: string): Uint8Array | undefined;
  close?(): Promise<void>;
}

/**
 * Reads `target.length` bytes at `offset` into `target`: with the source's
 * own `readInto` when it has one, else with `read` and one copy.
 */
export async function readInto(
  source: RangeSource,
  offset: number,
  target: Uint8Array,
  signal?: AbortSignal,
  version?: string,
): Promise<void> {
  if (source.readInto) return source.readInto(offset, target, signal, version);
  const bytes = await source.read(offset, target.length, signal, version);
  if (bytes.length !== target.length)
    throw new DesIoError(`${source.key} returned ${bytes.length} bytes for a read of ${target.length}`);
  target.set(bytes);
}

export const LOCAL_HINTS: ReadHints = {
  maxGap: 4096,
  maxSpan: 1 << 20,
  concurrency: 8,
  // The footer and a root of up to 1,024 pages (about 100,000 entries) in one read.
  tailBytes: 8192,
  cost: LOCAL_COST,
};
export const MEMORY_HINTS: ReadHints = { maxGap: 0, maxSpan: 1 << 30, concurrency: 64 };

export function checkRange(offset: number, length: number, size: number | undefined, key: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new DesInvalidArgumentError(`invalid range ${offset}+${length}`);
  }
  if (size !== undefined && offset + length > size) {
    throw new DesFormatError(`range ${offset}+${length} is past the end of ${key} (${size} bytes)`);
  }
}
