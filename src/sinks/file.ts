import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { DesExistsError, DesIoError } from "../errors.js";
import type { ByteSink } from "../io/sink.js";
import { syncDir } from "../io/local-files.js";
import { giveWriteBuffer, takeWriteBuffer } from "./write-buffers.js";

/** writeRetained copies chunks smaller than this into the buffer instead of keeping them. */
const RETAIN_MIN = 64 << 10;
const SYNC_EVERY = 32 << 20;
const EMPTY = Buffer.alloc(0);

function fsCall<T>(fn: (cb: (e: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
}

/** pwrite of all `length` bytes of `bytes` at `position`, however many calls it takes. */
async function writeFully(fd: number, bytes: Uint8Array, length: number, position: number): Promise<void> {
  let off = 0;
  while (off < length) {
    off += await fsCall<number>((cb) => fs.write(fd, bytes, off, length - off, position + off, cb));
  }
}

/** pwritev of every byte of `chunks` at `position`, however many calls it takes (a call may write part of them). */
async function writevFully(fd: number, chunks: readonly Uint8Array[], position: number): Promise<number> {
  let rest = chunks.filter((c) => c.length > 0);
  let at = position;
  while (rest.length > 0) {
    let n = await fsCall<number>((cb) => fs.writev(fd, rest.slice(0, IOV_MAX), at, cb));
    at += n;
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = rest.slice(k);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
  return at - position;
}

/** Chunks per writev call (Linux's IOV_MAX). */
const IOV_MAX = 1024;

/**
 * Writes to a temporary file beside the target, fsyncs, then moves it into
 * place. Without `overwrite`, the final step is a hard link, which fails
 * atomically if the target appeared meanwhile: an existing archive is never
 * replaced by accident.
 */
export class FileSink implements ByteSink {
  readonly location: string;
  readonly tempPath: string;
  private fd: number | undefined;
  private readonly overwrite: boolean;
  /** Empty until the first write (then a pooled buffer), empty again once the sink is done. */
  private buf: Buffer = EMPTY;
  private used = 0;
  private position = 0;
  private done = false;
  /** Set when commit or abort starts: no byte is taken after that (it could never land). */
  private closing = false;
  /**
   * Write-behind: a full buffer is written in the background while the
   * writer fills the other one, so reading bodies and writing the file
   * overlap. At most one such write is in flight; it never rejects (a
   * failure is kept in `failure` and thrown by the next call).
   */
  private inflight: Promise<void> | undefined;
  private spare: Buffer | undefined;
  private failure: unknown;
  /**
   * Bytes handed to the file since the last background flush to disk. Every
   * SYNC_EVERY bytes an fdatasync starts in the background, so the disk
   * writes overlap with packing and the fsync in `commit` has little left
   * to do. (Durability still comes only from that final fsync.)
   */
  private unsynced = 0;
  private syncing: Promise<void> | undefined;

  private constructor(
    target: string,
    tempPath: string,
    fd: number,
    overwrite: boolean,
    private readonly syncFolder: boolean,
  ) {
    this.location = target;
    this.tempPath = tempPath;
    this.fd = fd;
    this.overwrite = overwrite;
  }

  /**
   * `syncDir: false` leaves the folder's fsync after the final rename to the
   * caller: one that writes many files into one folder syncs it once, after
   * the last (until then a crash may lose the new names, never their bytes).
   */
  static async create(target: string, opts: { overwrite?: boolean; syncDir?: boolean } = {}): Promise<FileSink> {
    const full = path.resolve(target);
    if (!opts.overwrite && fs.existsSync(full))
      throw new DesExistsError(`${full} exists; not replaced (pass overwrite: true, or --overwrite to the CLI)`);
    const tmp = path.join(
      path.dirname(full),
      `.${path.basename(full)}.${process.pid}-${crypto.randomBytes(6).toString("hex")}.tmp`,
    );
    let fd: number;
    try {
      fd = await fsCall<number>((cb) => fs.open(tmp, "wx", 0o644, cb));
    } catch (e) {
      throw new DesIoError(`cannot create ${tmp}: ${(e as Error).message}`, { cause: e });
    }
    return new FileSink(full, tmp, fd, opts.overwrite ?? false, opts.syncDir ?? true);
  }

  /** Bytes accepted so far (buffered ones included). */
  get bytesWritten(): number {
    return this.position + this.used;
  }

  /** Waits for the background write, if any; throws its failure. */
  private async settle(): Promise<void> {
    const p = this.inflight;
    if (p) {
      await p;
      if (this.inflight === p) this.inflight = undefined;
    }
    if (this.failure !== undefined) {
      const e = this.failure as Error;
      throw new DesIoError(`write to ${this.tempPath} failed: ${e.message}`, { cause: e });
    }
  }

  /** Starts writing the filled buffer in the background (after the previous one has landed). */
  private async flush(): Promise<void> {
    await this.settle();
    const fd = this.fd;
    if (fd === undefined) throw new DesIoError(`${this.location}: the sink is closed`);
    if (this.used === 0) return;
    const full = this.buf;
    const length = this.used;
    const at = this.position;
    this.position += length;
    this.buf = this.spare ?? takeWriteBuffer();
    this.spare = undefined;
    this.used = 0;
    this.inflight = writeFully(fd, full, length, at).then(
      () => {
        this.spare = full;
        this.syncBehind(fd, length);
      },
      (e: unknown) => {
        this.failure = e;
      },
    );
  }

  private syncBehind(fd: number, written: number): void {
    this.unsynced += written;
    if (this.unsynced < SYNC_EVERY || this.syncing) return;
    this.unsynced = 0;
    this.syncing = new Promise<void>((resolve) =>
      fs.fdatasync(fd, (e) => {
        if (e) this.failure ??= e;
        this.syncing = undefined;
        resolve();
      }),
    );
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      this.checkOpen();
      if (this.buf === EMPTY) this.buf = takeWriteBuffer();
      if (this.used + chunk.length > this.buf.length) await this.flush();
      if (chunk.length >= this.buf.length) {
        // Large chunks go straight to the file instead of through the buffer,
        // and land before we return (the caller may reuse the chunk after that).
        await this.settle();
        const fd = this.fd;
        if (fd === undefined) throw new DesIoError(`${this.location}: the sink is closed`);
        const at = this.position;
        this.position += chunk.length;
        await writeFully(fd, chunk, chunk.length, at);
        this.syncBehind(fd, chunk.length);
        return;
      }
      this.buf.set(chunk, this.used);
      this.used += chunk.length;
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      throw new DesIoError(`write to ${this.tempPath} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Appends `chunks` in order with as few system calls as it takes
   * (pwritev), without copying them into the buffer; they have landed when
   * this resolves, so the caller may reuse them after that.
   */
  async writeMany(chunks: readonly Uint8Array[]): Promise<void> {
    try {
      this.checkOpen();
      if (this.used > 0) await this.flush();
      await this.settle();
      const fd = this.fd;
      if (fd === undefined) throw new DesIoError(`${this.location}: the sink is closed`);
      let total = 0;
      for (const c of chunks) total += c.length;
      const at = this.position;
      this.position += total;
      await writevFully(fd, chunks, at);
      this.syncBehind(fd, total);
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      throw new DesIoError(`write to ${this.tempPath} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Appends `chunk` without copying it: the sink keeps the chunk until its
   * bytes are in the file, then calls `release` (also when the write fails
   * or the sink is aborted), after which the caller may reuse it. Resolves
   * once the chunk has its place in the file, usually before it is written,
   * so the caller can prepare the next one meanwhile. Writes land in call
   * order; a failure is thrown by a later call, as for `write`.
   */
  async writeRetained(chunk: Uint8Array, release: () => void): Promise<void> {
    if (chunk.length < RETAIN_MIN) {
      try {
        await this.write(chunk);
      } finally {
        release();
      }
      return;
    }
    let queued = false;
    try {
      this.checkOpen();
      if (this.used > 0) await this.flush();
      else if (this.failure !== undefined) await this.settle();
      const fd = this.fd;
      if (fd === undefined) throw new DesIoError(`${this.location}: the sink is closed`);
      const at = this.position;
      this.position += chunk.length;
      const prev = this.inflight;
      const run = async (): Promise<void> => {
        try {
          if (prev) await prev;
          if (this.failure !== undefined) return;
          await writeFully(fd, chunk, chunk.length, at);
          this.syncBehind(fd, chunk.length);
        } catch (e) {
          this.failure ??= e;
        } finally {
          try {
            release();
          } catch {
            // Giving the chunk back is the caller's business; it must not fail the archive.
          }
        }
      };
      this.inflight = run();
      queued = true;
    } catch (e) {
      if (!queued) release();
      if (e instanceof DesIoError) throw e;
      throw new DesIoError(`write to ${this.tempPath} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async commit(): Promise<void> {
    try {
      this.checkOpen();
      this.closing = true;
      await this.flush();
      await this.settle();
      this.releaseBuffers();
      if (this.syncing) await this.syncing;
      const fd = this.fd!;
      await fsCall<void>((cb) => fs.fsync(fd, (e) => cb(e, undefined)));
      this.fd = undefined;
      await fsCall<void>((cb) => fs.close(fd, (e) => cb(e, undefined)));
      if (this.overwrite) {
        await fs.promises.rename(this.tempPath, this.location);
      } else {
        try {
          await fs.promises.link(this.tempPath, this.location);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST")
            throw new DesExistsError(`${this.location} appeared while writing; not replaced`);
          throw e;
        }
        await fs.promises.unlink(this.tempPath);
      }
      if (this.syncFolder) await syncDir(path.dirname(this.location));
      this.done = true;
    } catch (e) {
      await this.abort();
      if (e instanceof DesExistsError || e instanceof DesIoError) throw e;
      throw new DesIoError(`cannot finish ${this.location}: ${(e as Error).message}`, { cause: e });
    }
  }

  private checkOpen(): void {
    if (this.closing || this.fd === undefined) throw new DesIoError(`${this.location}: the sink is closed`);
  }

  /** Hands both buffers back to the pool once no write uses them; the sink takes no bytes after this. */
  private releaseBuffers(): void {
    giveWriteBuffer(this.buf === EMPTY ? undefined : this.buf);
    giveWriteBuffer(this.spare);
    this.buf = EMPTY;
    this.spare = undefined;
    this.used = 0;
  }

  async abort(): Promise<void> {
    this.closing = true;
    if (this.done) return;
    this.done = true;
    const fd = this.fd;
    this.fd = undefined;
    // Let background work finish before its descriptor closes (neither rejects).
    if (this.inflight) await this.inflight;
    this.releaseBuffers();
    if (this.syncing) await this.syncing;
    if (fd !== undefined) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    await fs.promises.rm(this.tempPath, { force: true });
  }
}
