import fs from "node:fs";
import path from "node:path";
import { batchReader } from "./batch-reader.js";
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
  /**
   * Optional: many ranges in one call, results in the same order, each its
   * own memory. For media where one call per range is the main cost (a
   * local file: a thread-pool round trip per read); the reader uses it for
   * batches and `read` for everything else. Same contract as `read` per range.
   */
  readMany?(ranges: readonly { offset: number; length: number }[], signal?: AbortSignal, version?: string): Promise<Uint8Array[]>;
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

export interface FileSourceOptions extends Partial<ReadHints> {
  /**
   * Read with synchronous `pread` on the calling thread instead of the
   * thread pool / the shared reader thread. Each read then costs a few
   * microseconds instead of a thread round trip (tens of microseconds), but
   * blocks the event loop while the disk answers: right for archives in the
   * page cache or on local SSD, wrong for network or spinning disks under a
   * latency-sensitive server. Default false.
   */
  syncReads?: boolean;
}

/**
 * Positional reads from a local file. By default never blocks the event
 * loop: single reads use callback `fs.read` (libuv's thread pool), batches go
 * to one shared reader thread. `syncReads` trades that for latency.
 */
export class FileSource implements RangeSource {
  readonly key: string;
  readonly hints: ReadHints;
  readonly stats = { reads: 0, bytesRead: 0 };
  private fd: number | undefined;
  private fileSize: number;
  /** Batches in flight on the shared reader thread; close() waits for them (they use the descriptor). */
  private readonly batches = new Set<Promise<unknown>>();

  private readonly syncReads: boolean;

  private constructor(filePath: string, fd: number, size: number, hints: ReadHints, syncReads: boolean) {
    this.key = path.resolve(filePath);
    this.fd = fd;
    this.fileSize = size;
    this.hints = hints;
    this.syncReads = syncReads;
  }

  static async open(filePath: string, opts: FileSourceOptions = {}): Promise<FileSource> {
    const { syncReads = false, ...hints } = opts;
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => fs.open(filePath, "r", (e, d) => (e ? reject(e) : resolve(d))));
    } catch (e) {
      throw new DesIoError(`cannot open ${filePath}: ${(e as Error).message}`, { cause: e });
    }
    const st = fs.fstatSync(fd);
    return new FileSource(filePath, fd, st.size, { ...LOCAL_HINTS, ...hints }, syncReads);
  }

  get size(): number {
    return this.fileSize;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.fileSize, this.key);
    const fd = this.fd;
    if (fd === undefined) throw new DesIoError(`${this.key} is closed`);
    if (this.syncReads) return this.readNow(fd, offset, length);
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

  /**
   * Many ranges with one message to a worker thread and one back, instead
   * of a thread-pool round trip each. Until that thread is up (or where
   * worker threads are unavailable), one `read` per range, eight at a time.
   */
  async readMany(ranges: readonly { offset: number; length: number }[], signal?: AbortSignal): Promise<Uint8Array[]> {
    throwIfAborted(signal);
    for (const r of ranges) checkRange(r.offset, r.length, this.fileSize, this.key);
    const fd = this.fd;
    if (fd === undefined) throw new DesIoError(`${this.key} is closed`);
    if (this.syncReads) return ranges.map((r) => this.readNow(fd, r.offset, r.length));
    const reader = batchReader();
    if (!reader.ready()) {
      const out: Uint8Array[] = new Array(ranges.length);
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < ranges.length) {
          const i = next++;
          out[i] = await this.read(ranges[i]!.offset, ranges[i]!.length, signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, ranges.length) }, lane));
      return out;
    }
    const pending = reader.read(fd, ranges, this.key, signal);
    this.batches.add(pending);
    let out: Uint8Array[];
    try {
      out = await pending;
    } finally {
      this.batches.delete(pending);
    }
    this.stats.reads += ranges.length;
    for (const r of ranges) this.stats.bytesRead += r.length;
    return out;
  }

  /** One synchronous pread (syncReads mode). */
  private readNow(fd: number, offset: number, length: number): Uint8Array {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(fd, buf, done, length - done, offset + done);
        if (n === 0) throw new DesIoError(`${this.key} ended at ${offset + done}, expected ${offset + length} bytes`);
        done += n;
      }
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      throw new DesIoError(`read of ${this.key} failed: ${(e as Error).message}`, { cause: e });
    }
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
    // Batches in flight still use the descriptor: let them finish before it closes.
    await Promise.allSettled(this.batches);
    if (fd !== undefined) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
  }
}
