/**
 * Local append (spec 3.8.3): the new generation is written in place at the
 * end of the archive file, under the lock, with the header's
 * `pending_length` naming the committed length until the footer is durable.
 */
import fs from "node:fs";
import path from "node:path";
import { DesFormatError, DesIoError, DesUnsupportedError } from "../errors.js";
import { DEFAULT_TAIL_SIZE } from "../format/constants.js";
import { loadHasher } from "../format/hash.js";
import { LOCAL_HINTS } from "../io/source.js";
import { openGeneration } from "../read/generations.js";
import { FileSource } from "../sources/file.js";
import { DesAppendWriter } from "./append.js";
import type { AppendOptions, AppendSink } from "./append.js";
import { acquireLock, io, recoverOpenFile, writePending } from "./append-lock.js";
import type { AppendLock } from "./append-lock.js";

/** Steps of a local append, in order, reported to the probe (crash tests stop the process at one of them). */
export type AppendStep = "locked" | "pending" | "write" | "barrier" | "footer" | "committed" | "truncated";

let probe: ((step: AppendStep, bytesWritten: number) => void) | undefined;

/** Test seam: called at every step of every local append in this process. Not part of the package's API. */
export function setAppendProbe(fn: ((step: AppendStep, bytesWritten: number) => void) | undefined): void {
  probe = fn;
}

const BUFFER = 1 << 20;

/** Writes after `start` of an open archive file; commit and abort keep the header's pending_length right. */
export class InPlaceFileSink implements AppendSink {
  private buf = Buffer.allocUnsafe(BUFFER);
  private used = 0;
  private position: number;
  private done = false;

  constructor(
    readonly location: string,
    private fd: number | undefined,
    private readonly start: number,
    private readonly lock: AppendLock,
  ) {
    this.position = start;
  }

  /** Bytes written past the committed length so far. */
  get bytesWritten(): number {
    return this.position + this.used - this.start;
  }

  /** Step 2: mark the append as in progress before any byte goes past the committed length. */
  begin(): void {
    io(`cannot mark ${this.location} as being appended to`, () => writePending(this.fdOrThrow(), this.start));
    probe?.("pending", 0);
  }

  private fdOrThrow(): number {
    if (this.fd === undefined) throw new DesIoError(`${this.location}: the append sink is closed`);
    return this.fd;
  }

  private flush(): void {
    if (this.used === 0) return;
    const fd = this.fdOrThrow();
    let off = 0;
    io(`write to ${this.location} failed`, () => {
      while (off < this.used) off += fs.writeSync(fd, this.buf, off, this.used - off, this.position + off);
    });
    this.position += this.used;
    this.used = 0;
    probe?.("write", this.position - this.start);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.used + chunk.length > this.buf.length) this.flush();
    if (chunk.length >= this.buf.length) {
      const fd = this.fdOrThrow();
      let off = 0;
      io(`write to ${this.location} failed`, () => {
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off, this.position + off);
      });
      this.position += chunk.length;
      probe?.("write", this.position - this.start);
      return;
    }
    this.buf.set(chunk, this.used);
    this.used += chunk.length;
  }

  /** Step 3's end: everything before the footer is on disk. */
  async barrier(): Promise<void> {
    this.flush();
    io(`fsync of ${this.location} failed`, () => fs.fdatasyncSync(this.fdOrThrow()));
    probe?.("barrier", this.bytesWritten);
  }

  /** Steps 4 and 5: the footer (already written to the buffer) made durable, then pending_length cleared. */
  async commit(): Promise<void> {
    const fd = this.fdOrThrow();
    this.flush();
    io(`fsync of ${this.location} failed`, () => fs.fsyncSync(fd));
    probe?.("footer", this.bytesWritten);
    this.done = true;
    try {
      io(`cannot clear the pending length of ${this.location}`, () => writePending(fd, 0, false));
      probe?.("committed", this.bytesWritten);
    } finally {
      await this.close();
    }
  }

  /** Truncates back to the committed length and clears pending_length. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.used = 0;
    const fd = this.fd;
    try {
      if (fd !== undefined) {
        io(`cannot truncate ${this.location} back to ${this.start} bytes`, () => {
          fs.ftruncateSync(fd, this.start);
          fs.fsyncSync(fd);
        });
        probe?.("truncated", 0);
        io(`cannot clear the pending length of ${this.location}`, () => writePending(fd, 0));
      }
    } finally {
      await this.close();
    }
  }

  private async close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) fs.closeSync(fd);
    await this.lock.release();
  }
}

/**
 * `DesWriter.append` for a local path: takes the lock (DesLockedError if
 * held), recovers a crashed earlier append, opens the newest generation and
 * reads its index, then marks the append as pending.
 */
export async function openLocalAppend(target: string, opts: AppendOptions = {}): Promise<DesAppendWriter> {
  const full = path.resolve(target);
  await loadHasher();
  const lock = await acquireLock(full);
  probe?.("locked", 0);
  let fd: number | undefined;
  try {
    fd = io(`cannot open ${full}`, () => fs.openSync(full, "r+"));
    io(`cannot recover ${full}`, () => recoverOpenFile(fd!));
    const source = await FileSource.open(full);
    try {
      const base = await openGeneration(source, LOCAL_HINTS, {
        tailSize: opts.tailSize ?? DEFAULT_TAIL_SIZE,
        pageCacheBytes: 16 << 20,
      });
      if (base.index.version === 1) {
        throw new DesUnsupportedError(
          `${full} is a DES v1 archive, which cannot be appended to (v1 has no generations); convert it first: des-pack repack --format 2 <in> <out> (or repack(source, target, { format: 2 }))`,
        );
      }
      const size = fs.fstatSync(fd).size;
      if (base.size !== size)
        throw new DesFormatError(`${full}: the newest generation ends at ${base.size} but the file has ${size} bytes`);
      const sink = new InPlaceFileSink(full, fd, base.size, lock);
      const writer = await DesAppendWriter.begin(sink, base, opts);
      fd = undefined; // the sink owns it now
      try {
        sink.begin();
      } catch (e) {
        await writer.abort();
        throw e;
      }
      return writer;
    } finally {
      await source.close();
    }
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    await lock.release();
    throw e;
  }
}
