import fs from "node:fs";
import path from "node:path";
import { DesAbortedError, DesFormatError, DesIoError, DesInvalidArgumentError, throwIfAborted } from "./errors.js";

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
  close?(): Promise<void>;
}

export const LOCAL_HINTS: ReadHints = { maxGap: 4096, maxSpan: 1 << 20, concurrency: 8 };
export const MEMORY_HINTS: ReadHints = { maxGap: 0, maxSpan: 1 << 30, concurrency: 64 };

export function checkRange(offset: number, length: number, size: number | undefined, key: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new DesInvalidArgumentError(`invalid range ${offset}+${length}`);
  }
  if (size !== undefined && offset + length > size) {
    throw new DesFormatError(`range ${offset}+${length} is past the end of ${key} (${size} bytes)`);
  }
}

/** An archive held in memory. Reads return views, not copies. */
export class MemorySource implements RangeSource {
  readonly key: string;
  readonly size: number;
  readonly hints: ReadHints = MEMORY_HINTS;
  private readonly bytes: Uint8Array;
  /** Counts reads, so tests and benchmarks can assert I/O. */
  readonly stats = { reads: 0, bytesRead: 0 };

  constructor(bytes: Uint8Array, key = "memory:") {
    // A plain Uint8Array view, so callers get Uint8Array (not Buffer) slices whatever they passed in.
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.length;
    this.key = key;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.size, this.key);
    this.stats.reads++;
    this.stats.bytesRead += length;
    return this.bytes.subarray(offset, offset + length);
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number }> {
    const n = Math.min(length, this.size);
    return { bytes: await this.read(this.size - n, n, signal), size: this.size };
  }
}

/**
 * Positional reads from a local file. Uses callback `fs.read` (libuv's thread
 * pool): as fast as `readSync` with a few reads in flight, without blocking
 * the event loop.
 */
export class FileSource implements RangeSource {
  readonly key: string;
  readonly hints: ReadHints;
  readonly stats = { reads: 0, bytesRead: 0 };
  private fd: number | undefined;
  private fileSize: number;

  private constructor(filePath: string, fd: number, size: number, hints: ReadHints) {
    this.key = path.resolve(filePath);
    this.fd = fd;
    this.fileSize = size;
    this.hints = hints;
  }

  static async open(filePath: string, hints: Partial<ReadHints> = {}): Promise<FileSource> {
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => fs.open(filePath, "r", (e, d) => (e ? reject(e) : resolve(d))));
    } catch (e) {
      throw new DesIoError(`cannot open ${filePath}: ${(e as Error).message}`, { cause: e });
    }
    const st = fs.fstatSync(fd);
    return new FileSource(filePath, fd, st.size, { ...LOCAL_HINTS, ...hints });
  }

  get size(): number {
    return this.fileSize;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.fileSize, this.key);
    const fd = this.fd;
    if (fd === undefined) throw new DesIoError(`${this.key} is closed`);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, done, length - done, offset + done, (e, got) => (e ? reject(new DesIoError(`read of ${this.key} failed: ${e.message}`, { cause: e })) : resolve(got))),
      );
      // A file that shrank under us must not yield a short or zero-filled result.
      if (n === 0) throw new DesIoError(`${this.key} ended at ${offset + done}, expected ${offset + length} bytes`);
      done += n;
    }
    if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
    this.stats.reads++;
    this.stats.bytesRead += length;
    return new Uint8Array(buf.buffer, buf.byteOffset, length);
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number }> {
    if (this.fd !== undefined) this.fileSize = fs.fstatSync(this.fd).size;
    const n = Math.min(length, this.fileSize);
    return { bytes: await this.read(this.fileSize - n, n, signal), size: this.fileSize };
  }

  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
  }
}
