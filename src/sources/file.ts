import fs from "node:fs";
import path from "node:path";
import { batchReader } from "./file-batch-reader.js";
import { DesAbortedError, DesIoError, throwIfAborted } from "../errors.js";
import { checkRange, LOCAL_HINTS, type RangeSource, type ReadHints } from "../io/source.js";


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
