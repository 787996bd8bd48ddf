import fs from "node:fs";
import path from "node:path";
import { batchReader } from "./file-batch-reader.js";
import { fileVersion, openFd, openFdSync } from "./file-open.js";
import { DesAbortedError, DesChangedError, DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { checkRange, LOCAL_HINTS, type RangeSource, type ReadHints } from "../io/source.js";

export { fileVersion } from "./file-open.js";

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
  /**
   * How often, at most, a read pinned to a version looks at the path again
   * (one `stat`) to notice that the file was replaced or rewritten, ms.
   * Default 1000; 0 checks on every pinned read. Between checks, reads are
   * served from the descriptor opened for that version (a replaced file's
   * old bytes stay readable through it, so they are never mixed with new ones).
   */
  checkIntervalMs?: number;
}

/** One open descriptor and the version of the file it reads; closed when its last reader is done. */
interface Handle {
  readonly fd: number;
  token: string;
  users: number;
  retired: boolean;
  closed: Promise<void> | undefined;
  settle: (() => void) | undefined;
}

/**
 * Positional reads from a local file. By default never blocks the event
 * loop: single reads use callback `fs.read` (libuv's thread pool), batches go
 * to one shared reader thread. `syncReads` trades that for latency.
 *
 * Versions: `readTail` returns the file's version token and, if the path now
 * names another file, switches to it (like an S3 source learning a new
 * ETag). A read pinned to a version that is no longer current, or that finds
 * the path changed at its periodic check, fails with DesChangedError.
 * A descriptor is closed only after every read using it has settled, so a
 * read never fails with EBADF or reads a reused descriptor.
 */
export class FileSource implements RangeSource {
  declare readonly key: string;
  declare readonly hints: ReadHints;
  declare readonly stats: { reads: number; bytesRead: number };
  declare private handle: Handle | undefined;
  declare private fileSize: number;
  declare private readonly syncReads: boolean;
  declare private readonly checkIntervalMs: number;
  declare private lastCheck: number;
  /** Just opened: a first `readTail` within checkIntervalMs needs no new stat (open took one). */
  declare private justOpened: boolean;

  private constructor(
    filePath: string,
    fd: number,
    st: fs.BigIntStats,
    hints: ReadHints,
    syncReads: boolean,
    checkIntervalMs: number,
  ) {
    this.key = path.resolve(filePath);
    this.stats = { reads: 0, bytesRead: 0 };
    this.justOpened = true;
    this.handle = FileSource.handleOf(fd, st);
    this.fileSize = Number(st.size);
    this.hints = hints;
    this.syncReads = syncReads;
    this.checkIntervalMs = checkIntervalMs;
    this.lastCheck = Date.now();
  }

  private static handleOf(fd: number, st: fs.BigIntStats): Handle {
    return { fd, token: fileVersion(st), users: 0, retired: false, closed: undefined, settle: undefined };
  }

  /**
   * Opens without blocking (a FIFO never hangs; with `syncReads` the open and
   * stat run on the calling thread, like the reads) and refuses anything but a
   * regular file.
   */
  static async open(filePath: string, opts: FileSourceOptions = {}): Promise<FileSource> {
    const { syncReads = false, checkIntervalMs = 1000, ...hints } = opts;
    if (!Number.isFinite(checkIntervalMs) || checkIntervalMs < 0)
      throw new DesInvalidArgumentError("checkIntervalMs must be a non-negative number");
    const { fd, st } = syncReads ? openFdSync(filePath) : await openFd(filePath);
    return new FileSource(filePath, fd, st, { ...LOCAL_HINTS, ...hints }, syncReads, checkIntervalMs);
  }

  get size(): number {
    return this.fileSize;
  }

  /** The version token of the file being read (see `fileVersion`). */
  get version(): string | undefined {
    return this.handle?.token;
  }

  /** Takes the current descriptor for one read; checks the version the read is pinned to. */
  private acquire(version: string | undefined): Handle {
    const h = this.handle;
    if (h === undefined) throw new DesIoError(`${this.key} is closed`);
    if (version !== undefined) {
      if (version !== h.token) throw new DesChangedError(`${this.key} changed (${version} -> ${h.token})`);
      const now = Date.now();
      if (now - this.lastCheck >= this.checkIntervalMs) {
        this.lastCheck = now;
        this.checkPath(h);
      }
    }
    h.users++;
    return h;
  }

  private release(h: Handle): void {
    h.users--;
    if (h.users === 0 && h.retired) this.closeHandle(h);
  }

  /** One `stat` of the path: the file replaced, rewritten or grown since this version was taken is a change. */
  private checkPath(h: Handle): void {
    let st: fs.BigIntStats | undefined;
    try {
      st = fs.statSync(this.key, { bigint: true, throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    // A removed path leaves the open file readable, as it is.
    if (st !== undefined && fileVersion(st) !== h.token)
      throw new DesChangedError(`${this.key} changed (${h.token} -> ${fileVersion(st)})`);
  }

  /** Stops handing out `h`; it closes once its last read has settled. */
  private retire(h: Handle): Promise<void> {
    h.retired = true;
    h.closed ??= new Promise<void>((resolve) => {
      h.settle = resolve;
    });
    if (h.users === 0) this.closeHandle(h);
    return h.closed;
  }

  private closeHandle(h: Handle): void {
    const settle = h.settle;
    h.settle = undefined;
    if (settle) fs.close(h.fd, () => settle());
  }

  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.fileSize, this.key);
    const h = this.acquire(version);
    try {
      if (this.syncReads) return this.pread(h.fd, offset, length);
      const buf = Buffer.allocUnsafe(length);
      await this.fill(h, offset, buf, signal);
      return new Uint8Array(buf.buffer, buf.byteOffset, length);
    } finally {
      this.release(h);
    }
  }

  /** `read` into the caller's memory (the RangeSource `readInto`). */
  async readInto(offset: number, target: Uint8Array, signal?: AbortSignal, version?: string): Promise<void> {
    throwIfAborted(signal);
    checkRange(offset, target.length, this.fileSize, this.key);
    const h = this.acquire(version);
    try {
      if (this.syncReads) this.fillNow(h.fd, offset, target);
      else await this.fill(h, offset, target, signal);
    } finally {
      this.release(h);
    }
  }

  /** Fills `buf` from `offset` with thread-pool reads. */
  private async fill(h: Handle, offset: number, buf: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
    const length = buf.length;
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(h.fd, buf, done, length - done, offset + done, (e, got) =>
          e ? reject(new DesIoError(`read of ${this.key} failed: ${e.message}`, { cause: e })) : resolve(got),
        ),
      );
      // A file that shrank under us must not yield a short or zero-filled result.
      if (n === 0) throw this.endedError(h, offset + done, offset + length);
      done += n;
    }
    if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
    this.stats.reads++;
    this.stats.bytesRead += length;
  }

  /** A read that hit the end early: the file was truncated (a change) or is broken. */
  private endedError(h: Handle, at: number, expected: number): DesIoError | DesChangedError {
    try {
      const st = fs.fstatSync(h.fd, { bigint: true });
      if (fileVersion(st) !== h.token)
        return new DesChangedError(`${this.key} changed while being read (now ${st.size} bytes)`);
    } catch {
      // report the short read
    }
    return new DesIoError(`${this.key} ended at ${at}, expected ${expected} bytes`);
  }

  /**
   * Many ranges with one message to a worker thread and one back, instead
   * of a thread-pool round trip each. Until that thread is up (or where
   * worker threads are unavailable), one `read` per range, eight at a time.
   */
  async readMany(
    ranges: readonly { offset: number; length: number }[],
    signal?: AbortSignal,
    version?: string,
  ): Promise<Uint8Array[]> {
    throwIfAborted(signal);
    for (const r of ranges) checkRange(r.offset, r.length, this.fileSize, this.key);
    const h = this.acquire(version);
    try {
      if (this.syncReads) return ranges.map((r) => this.pread(h.fd, r.offset, r.length));
      const reader = batchReader();
      if (!reader.ready()) {
        const out: Uint8Array[] = new Array(ranges.length);
        let next = 0;
        const lane = async (): Promise<void> => {
          while (next < ranges.length) {
            const i = next++;
            out[i] = await this.read(
              ranges[i]!.offset,
              ranges[i]!.length,
              signal,
              version === undefined ? undefined : h.token,
            );
          }
        };
        await Promise.all(Array.from({ length: Math.min(8, ranges.length) }, lane));
        return out;
      }
      const out = await reader.read(h.fd, ranges, this.key, signal);
      this.stats.reads += ranges.length;
      for (const r of ranges) this.stats.bytesRead += r.length;
      return out;
    } finally {
      this.release(h);
    }
  }

  /**
   * With `syncReads`: `read` on the calling thread, without a promise (the
   * RangeSource `readSync`). Without it: undefined (use `read`).
   */
  readSync(offset: number, length: number, version?: string): Uint8Array | undefined {
    if (!this.syncReads) return undefined;
    checkRange(offset, length, this.fileSize, this.key);
    const h = this.acquire(version);
    try {
      return this.pread(h.fd, offset, length);
    } finally {
      this.release(h);
    }
  }

  /** One synchronous pread (syncReads mode). */
  private pread(fd: number, offset: number, length: number): Uint8Array {
    const buf = Buffer.allocUnsafe(length);
    this.fillNow(fd, offset, buf);
    return new Uint8Array(buf.buffer, buf.byteOffset, length);
  }

  private fillNow(fd: number, offset: number, buf: Uint8Array): void {
    const length = buf.length;
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
  }

  /**
   * The last `length` bytes, the size and the version token. When the path
   * now names another file (replaced by a rename), the source switches to it
   * first: reads pinned to the old version then fail with DesChangedError.
   */
  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version: string }> {
    throwIfAborted(signal);
    const h = this.handle;
    if (h === undefined) throw new DesIoError(`${this.key} is closed`);
    const fresh = this.justOpened && this.checkIntervalMs > 0 && Date.now() - this.lastCheck < this.checkIntervalMs;
    this.justOpened = false;
    if (!fresh) return this.readTailAgain(h, length, signal);
    const n = Math.min(length, this.fileSize);
    const bytes =
      this.readSync(this.fileSize - n, n, h.token) ?? (await this.read(this.fileSize - n, n, signal, h.token));
    return { bytes, size: this.fileSize, version: h.token };
  }

  /** `readTail` after the first: the path is looked at again (and switched to when it names another file). */
  private async readTailAgain(
    h: Handle,
    length: number,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; size: number; version: string }> {
    let st = fs.fstatSync(h.fd, { bigint: true });
    const now = fs.statSync(this.key, { bigint: true, throwIfNoEntry: false });
    if (now !== undefined && (now.dev !== st.dev || now.ino !== st.ino)) {
      const next = await openFd(this.key);
      if (this.handle !== h) {
        // closed or switched meanwhile
        fs.close(next.fd, () => undefined);
        return this.readTail(length, signal);
      }
      this.handle = FileSource.handleOf(next.fd, next.st);
      void this.retire(h);
      h = this.handle;
      st = next.st;
    }
    h.token = fileVersion(st);
    this.fileSize = Number(st.size);
    this.lastCheck = Date.now();
    const n = Math.min(length, this.fileSize);
    const bytes = await this.read(this.fileSize - n, n, signal, h.token);
    return { bytes, size: this.fileSize, version: h.token };
  }

  /**
   * The token `readTail` would return now, from one `stat` of the path (the
   * open descriptor's `fstat` when the path is gone): an append in place
   * changes the size, a replacement the inode.
   */
  async currentVersion(signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal);
    const h = this.handle;
    if (h === undefined) throw new DesIoError(`${this.key} is closed`);
    const now = await fs.promises.stat(this.key, { bigint: true }).catch(() => undefined);
    if (now !== undefined) return fileVersion(now);
    return fileVersion(fs.fstatSync(h.fd, { bigint: true }));
  }

  /** Closes the file once every read in flight (single or batch) has settled. Safe to call twice. */
  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h) await this.retire(h);
  }
}
