import fs from "node:fs";
import path from "node:path";
import { syncDir } from "../io/local-files.js";
import { DesIoError } from "../errors.js";
import { JOURNAL_HEADER, encodeHeader, encodeRecord } from "./journal-format.js";
import { SlabPool, dropBytes, fsCall, writeZeros } from "./journal-writes.js";
import type { Slab } from "./journal-writes.js";
import type { JournalRecord, ScanResult, Watermark } from "./journal-format.js";

export { encodeRecord, scanJournal } from "./journal-format.js";
export type { JournalRecord, ScanResult, Watermark } from "./journal-format.js";

/** writev takes at most this many buffers per call. */
const MAX_IOV = 1024;
const MAX_GROUP_BYTES = 16 << 20;
/** Groups written and syncing at once. */
const PIPELINE = 2;
/** With nothing in flight, a queue of this many records or more is written as two groups. */
const SPLIT_AT = 8;
/**
 * Zero bytes kept ahead of the writer: when less than half is left, the file
 * is extended again in the background (zeros written and fdatasynced off the
 * put path), so that a group's writes land in blocks the file already has.
 */
const RESERVE = 4 << 20;

interface Pending {
  readonly bytes: Buffer;
  /** The slab the bytes were carved from, if any (given back once they are written). */
  readonly slab: Slab | undefined;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * One open journal file. `append` queues a record; queued records are written
 * with one writev and made durable with one fdatasync per group, and every
 * record of a group resolves after that fsync (group commit). Up to
 * `PIPELINE` groups are in flight at once: the next group is written and
 * synced while the previous fsync runs, and groups resolve in file order.
 * The file is extended with zero bytes ahead of the writer, so a group's
 * fdatasync usually finds the file's size and blocks unchanged and only has
 * data to flush (no file-system journal commit).
 */
export class Journal {
  readonly file: string;
  readonly seq: number;
  readonly records: JournalRecord[] = [];
  /** Bytes in the file once everything queued is written. */
  size: number;
  private fd: number | undefined;
  /** Bytes written (not necessarily synced yet). */
  private written: number;
  /** Where the zero bytes reserved ahead end (written and synced): groups write below it. */
  private allocated: number;
  /** The extension of the reserve in flight (zeros written past `allocated`, then an fdatasync). */
  private extending: Promise<void> | undefined;
  /** Set when an extension failed: groups then append past the end of the file as a plain file would. */
  private noReserve = false;
  private queue: Pending[] = [];
  private readonly slabs = new SlabPool();
  private queuedBytes = 0;
  private inflight = 0;
  private scheduled = false;
  /** Settles when the last group started has settled (never rejects). */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private roomWaiters: { size: number; resolve: () => void }[] = [];
  /** Bytes of woken waiters that have not appended yet. */
  private promised = 0;
  private peakQueued = 0;
  /** Group commits done (one writev + fdatasync each). */
  commits = 0;
  /** Extensions of the zero reserve done in the background. */
  extensions = 0;
  /** Epoch ms of the first record, for maxAgeMs. */
  firstAt: number | undefined;

  private constructor(
    file: string,
    seq: number,
    fd: number,
    size: number,
    private readonly maxQueuedBytes: number,
  ) {
    this.file = file;
    this.seq = seq;
    this.fd = fd;
    this.size = size;
    this.written = size;
    this.allocated = size;
  }

  /** Creates a new journal file (it must not exist) and makes its header and directory entry durable. */
  static async create(
    file: string,
    nodeId: number,
    seq: number,
    last: Watermark | undefined,
    maxQueuedBytes: number,
  ): Promise<Journal> {
    let fd: number;
    try {
      fd = await fsCall<number>((cb) => fs.open(file, "wx+", 0o644, cb));
    } catch (e) {
      throw new DesIoError(`cannot create journal ${file}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const h = encodeHeader(nodeId, seq, last);
      await fsCall<number>((cb) => fs.write(fd, h, 0, h.length, 0, cb));
      // The first reserve goes with the header's fsync: the first groups find their blocks allocated.
      await writeZeros(fd, JOURNAL_HEADER, JOURNAL_HEADER + RESERVE);
      await fsCall<void>((cb) => fs.fdatasync(fd, (e) => cb(e, undefined)));
      await syncDir(path.dirname(file));
    } catch (e) {
      fs.closeSync(fd);
      throw new DesIoError(`cannot create journal ${file}: ${(e as Error).message}`, { cause: e });
    }
    const j = new Journal(file, seq, fd, JOURNAL_HEADER, maxQueuedBytes);
    j.allocated = JOURNAL_HEADER + RESERVE;
    return j;
  }

  /** Opens a recovered journal for reading (and sealing): its torn tail is cut off durably first. */
  static async recover(file: string, scan: ScanResult, actualLength: number): Promise<Journal> {
    let fd: number | undefined;
    try {
      fd = await fsCall<number>((cb) => fs.open(file, "r+", cb));
      if (actualLength > scan.validLength) {
        const f = fd;
        await fsCall<void>((cb) => fs.ftruncate(f, scan.validLength, (e) => cb(e, undefined)));
        await fsCall<void>((cb) => fs.fdatasync(f, (e) => cb(e, undefined)));
      }
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      throw new DesIoError(`cannot recover journal ${file}: ${(e as Error).message}`, { cause: e });
    }
    const j = new Journal(file, scan.seq, fd, scan.validLength, 0);
    j.records.push(...scan.records);
    return j;
  }

  get failed(): unknown {
    return this.failure;
  }

  /**
   * Waits until `size` more bytes fit the queue (backpressure: callers wait
   * instead of piling up encoded records). Undefined when they fit now; an
   * empty queue always takes one record, whatever its size. A caller woken
   * from the wait holds a credit of `size` bytes: it hands it back with the
   * record it appends (`appendRecord(..., size)`) or with `release(size)`.
   */
  room(size: number): Promise<void> | undefined {
    const used = this.queuedBytes + this.promised;
    if (
      this.failure !== undefined ||
      used === 0 ||
      (this.roomWaiters.length === 0 && used + size <= this.maxQueuedBytes)
    )
      return undefined;
    return new Promise((resolve) => this.roomWaiters.push({ size, resolve }));
  }

  /** Gives back the credit of a caller woken by `room` that appends no record here. */
  release(credit: number): void {
    if (credit <= 0) return;
    this.promised = Math.max(0, this.promised - credit);
    this.wake();
  }

  /** Most bytes ever queued at once (tests check the backpressure bound). */
  get peakQueuedBytes(): number {
    return this.peakQueued;
  }

  /**
   * Encodes a record at `this.size` and queues it: `durable` resolves once
   * it is on disk. `rec` is known at once (read-your-writes). `credit` is
   * the room a `room` wait promised to the caller (0 when it did not wait);
   * it is given back whether or not the record is queued.
   */
  appendRecord(
    name: string,
    ms: number,
    meta: Uint8Array | undefined,
    data: Uint8Array,
    credit = 0,
  ): { rec: JournalRecord; durable: Promise<void> } {
    let slab: Slab | undefined;
    let encoded: { bytes: Buffer; rec: JournalRecord };
    try {
      encoded = encodeRecord(name, ms, meta, data, this.size, (length) => {
        const carved = this.slabs.carve(length);
        slab = carved.slab;
        return carved.bytes;
      });
    } catch (e) {
      this.release(credit);
      throw e;
    }
    return { rec: encoded.rec, durable: this.append(encoded.bytes, encoded.rec, slab, credit) };
  }

  /**
   * Queues a record at `this.size` (the caller encoded it there) and resolves
   * once it is durable; `credit` as for `appendRecord`.
   */
  append(bytes: Buffer, rec: JournalRecord, slab?: Slab, credit = 0): Promise<void> {
    this.promised = Math.max(0, this.promised - credit);
    if (this.failure !== undefined) {
      this.wake();
      return Promise.reject(new DesIoError(`journal ${this.file} failed earlier`, { cause: this.failure }));
    }
    this.size += bytes.length;
    this.records.push(rec);
    this.firstAt ??= Date.now();
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > this.peakQueued) this.peakQueued = this.queuedBytes;
    const p = new Promise<void>((resolve, reject) => this.queue.push({ bytes, slab, resolve, reject }));
    this.kick();
    return p;
  }

  /** Starts a group on the next turn of the event loop, so the records queued in this one join it. */
  private kick(): void {
    if (this.scheduled || this.inflight >= PIPELINE || this.queue.length === 0 || this.failure !== undefined) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startGroup();
    });
  }

  private startGroup(): void {
    if (this.inflight >= PIPELINE || this.queue.length === 0 || this.failure !== undefined) return;
    // With nothing in flight, a large queue is cut in two so the halves overlap (one fsync each in flight):
    // the callers then settle into cohorts that alternate, one syncing while the other queues.
    const limit =
      this.inflight === 0 && this.queue.length >= SPLIT_AT ? Math.ceil(this.queue.length / 2) : this.queue.length;
    let n = 0;
    let bytes = 0;
    while (n < limit && n < MAX_IOV && (n === 0 || bytes + this.queue[n]!.bytes.length <= MAX_GROUP_BYTES)) {
      bytes += this.queue[n]!.bytes.length;
      n++;
    }
    // A group never writes into zeros still being written: past the reserve, it waits for the extension.
    if (this.extending && this.written + bytes > this.allocated) return;
    const group = this.queue.splice(0, n);
    try {
      let bufs = group.map((g) => g.bytes as NodeJS.ArrayBufferView);
      let pos = this.written;
      let left = bytes;
      while (left > 0) {
        // A synchronous writev: the bytes only go to the page cache (microseconds for a group),
        // which saves a thread-pool round trip per group; the fdatasync below is the slow part.
        const w = fs.writevSync(this.fd!, bufs, pos);
        left -= w;
        pos += w;
        if (left > 0) bufs = dropBytes(bufs, w);
      }
    } catch (e) {
      this.fail(e, group);
      return;
    }
    // The group's bytes are in the file: full slabs whose records are all written are reused.
    for (const g of group) if (g.slab) this.slabs.written(g.slab);
    this.written += bytes;
    if (this.written > this.allocated) this.allocated = this.written;
    this.extend();
    this.inflight++;
    const synced = fsCall<void>((cb) => fs.fdatasync(this.fd!, (e) => cb(e, undefined)));
    const before = this.tail;
    this.tail = (async () => {
      let err: unknown;
      try {
        await synced;
      } catch (e) {
        err = e;
      }
      await before; // groups resolve in file order
      this.inflight--;
      // After an earlier group's fsync failed, a later fsync's success proves nothing about its pages.
      if (err !== undefined || this.failure !== undefined) {
        this.fail(err ?? this.failure, group);
        return;
      }
      this.queuedBytes -= bytes;
      this.commits++;
      for (const g of group) g.resolve();
      this.wake();
      this.kick();
    })();
    this.kick();
  }

  /**
   * Extends the reserve in the background when less than half of it is
   * left: zeros are written past `allocated` with thread-pool writes and
   * made durable with their own fdatasync, so the file's new size and blocks
   * are committed off the put path; writes into the file's existing blocks
   * then need no change of its size or extents to become durable. Recovery
   * reads a zero length as the end of the records (6.3), like a torn tail.
   */
  private extend(): void {
    if (this.extending || this.noReserve || this.fd === undefined) return;
    if (this.written + (RESERVE >> 1) <= this.allocated) return;
    const fd = this.fd;
    const from = this.allocated;
    const to = this.written + RESERVE;
    const run = (async () => {
      try {
        await writeZeros(fd, from, to);
        await fsCall<void>((cb) => fs.fdatasync(fd, (e) => cb(e, undefined)));
        this.allocated = to;
      } catch {
        this.noReserve = true; // groups append past the end; their own writes report the error, if any
      }
      this.extending = undefined;
      this.extensions++;
      this.kick();
    })();
    this.extending = run;
  }

  private fail(e: unknown, group: Pending[]): void {
    this.failure ??= e;
    const err = new DesIoError(`cannot write journal ${this.file}: ${(e as Error).message}`, { cause: e });
    for (const g of [...group, ...this.queue.splice(0)]) g.reject(err);
    this.queuedBytes = 0;
    this.wake();
  }

  private wake(): void {
    for (;;) {
      const w = this.roomWaiters[0];
      if (!w) break;
      const used = this.queuedBytes + this.promised;
      if (this.failure === undefined && used > 0 && used + w.size > this.maxQueuedBytes) break;
      this.roomWaiters.shift();
      this.promised += w.size;
      w.resolve();
    }
  }

  /** Resolves when everything queued so far is written and synced. */
  async drain(): Promise<void> {
    for (;;) {
      if (this.inflight > 0) await this.tail;
      // A queue held back by a reserve extension waits for it, not in a loop of turns.
      else if (this.queue.length > 0 && this.failure === undefined)
        await (this.extending ?? new Promise((r) => setImmediate(r)));
      else return;
    }
  }

  /**
   * Reads `length` bytes at `offset` (bodies and meta of this journal's
   * records) with a synchronous pread: the bytes were just written and sit in
   * the page cache, where a pread costs less than a trip to the thread pool.
   */
  read(offset: number, length: number): Uint8Array {
    if (this.fd === undefined) throw new DesIoError(`journal ${this.file} is closed`);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    try {
      while (got < length) {
        const n = fs.readSync(this.fd, buf, got, length - got, offset + got);
        if (n === 0) throw new DesIoError(`journal ${this.file} ends before offset ${offset + length}`);
        got += n;
      }
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      throw new DesIoError(`cannot read journal ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, length);
  }

  /** The whole file (for sealing), read after `drain`. */
  async readAll(): Promise<Buffer> {
    await this.drain();
    return fs.promises.readFile(this.file);
  }

  /** Closes the file (reads are synchronous, so none is in flight; an extension in flight finishes first). */
  retire(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    const close = (): void => {
      if (this.inflight === 0 && this.failure === undefined) {
        try {
          fs.ftruncateSync(fd, this.written); // drop the reserved zeros (a reader would skip them anyway)
        } catch {
          // harmless: recovery reads the zeros as the end of the records
        }
      }
      fs.close(fd, () => undefined);
    };
    if (this.extending) void this.extending.then(close);
    else close();
  }
}
