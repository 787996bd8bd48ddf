import os from "node:os";
import { Worker } from "node:worker_threads";

/**
 * Creating many small files is system calls (open, write, fchmod, futimes,
 * close), each cheap, many of them. Done asynchronously that is a thread-pool
 * round trip each; done synchronously on the main thread it stops reading.
 * So batches of new files go to a few worker threads that make them with
 * synchronous calls, back to back, while the main thread reads and checks
 * the next entries. A worker only ever creates new names (O_CREAT | O_EXCL |
 * O_NOFOLLOW) in folders the main thread made and checked; a name that
 * exists comes back to the main thread, which decides (--force or not).
 *
 * Bodies travel through one shared buffer cut into a fixed number of slots
 * (two per worker): the main thread copies a body into a free slot and lets
 * the reader's copy go, so the bytes waiting to be written are bounded by
 * the slots, allocated once, and never wait for a garbage collection in
 * either thread. A body bigger than a slot goes alone in a buffer of its own
 * and counts against the same budget: the caller's buffer itself, moved to
 * the worker without a copy, when the caller gives it up (`transfer`) and the
 * body is the whole of it.
 */
const WORKER_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const C = fs.constants;
const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | (C.O_NOFOLLOW || 0);
const shared = new Uint8Array(workerData.shared);
parentPort.on("message", (m) => {
  const bytes = m.buffer ? new Uint8Array(m.buffer) : shared;
  const failed = [];
  let at = m.offset;
  for (let i = 0; i < m.paths.length; i++) {
    const len = m.lengths[i];
    let fd;
    try {
      fd = fs.openSync(m.paths[i], CREATE, 0o600);
      let done = 0;
      while (done < len) done += fs.writeSync(fd, bytes, at + done, len - done);
      fs.fchmodSync(fd, m.modes[i]);
      const t = m.mtimes[i];
      if (t === t) fs.futimesSync(fd, t, t);
      fs.closeSync(fd);
    } catch (e) {
      if (fd !== undefined) {
        try { fs.closeSync(fd); } catch {}
        try { fs.unlinkSync(m.paths[i]); } catch {}
      }
      failed.push({ index: i, code: e.code || "", message: String(e.message) });
    }
    at += len;
  }
  parentPort.postMessage({ id: m.id, failed });
});
`;

/** A file for the pool; its bytes are passed to `add` and not kept. */
export interface PoolFile {
  readonly path: string;
  readonly mode: number;
  /** Seconds since the epoch, or NaN to leave the time alone. */
  readonly mtime: number;
}

export interface PoolFailure<F extends PoolFile = PoolFile> {
  readonly file: F;
  readonly code: string;
  readonly message: string;
}

export interface PoolOptions {
  /** Worker threads (default: up to 2, as many as there are cores). */
  readonly workers?: number;
  /** Bytes per slot of the shared buffer, the most one batch carries (default 4 MiB). */
  readonly slotBytes?: number;
  /** Files per batch at most (default 256). */
  readonly batchFiles?: number;
}

interface Batch<F> {
  readonly files: F[];
  readonly lengths: number[];
  readonly slot: number;
  bytes: number;
}

export class WritePool<F extends PoolFile = PoolFile> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { files: F[]; resolve: (f: PoolFailure<F>[]) => void; reject: (e: unknown) => void }
  >();
  private readonly shared: Uint8Array;
  private readonly slotBytes: number;
  private readonly batchFiles: number;
  private readonly freeSlots: number[] = [];
  /** Resolved when a slot is given back. */
  private slotWaiters: (() => void)[] = [];
  private inFlight = new Set<Promise<void>>();
  private next = 0;
  private id = 0;
  private batch: Batch<F> | undefined;
  private failure: unknown;
  /** Body bytes copied and not yet on disk, now and at most (for tests and budgets). */
  bytesInFlight = 0;
  peakBytesInFlight = 0;
  /** Bytes of bodies bigger than a slot that were moved to a worker rather than copied. */
  movedBytes = 0;
  /** The most `bytesInFlight` can reach while no single body is bigger than a slot. */
  readonly budgetBytes: number;

  constructor(
    /** Called for each batch once its files are on disk (failures: names that exist, errors). */
    private readonly onDone: (files: readonly F[], failed: readonly PoolFailure<F>[]) => void,
    opts: PoolOptions = {},
  ) {
    const count = opts.workers ?? Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length));
    this.slotBytes = opts.slotBytes ?? 4 << 20;
    this.batchFiles = opts.batchFiles ?? 256;
    const slots = 2 * count;
    this.budgetBytes = slots * this.slotBytes;
    const sab = new SharedArrayBuffer(this.budgetBytes);
    this.shared = new Uint8Array(sab);
    for (let i = 0; i < slots; i++) this.freeSlots.push(i);
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { shared: sab },
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 4, stackSizeMb: 1 },
      });
      w.on("message", (m: { id: number; failed: { index: number; code: string; message: string }[] }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve(m.failed.map((f) => ({ file: p.files[f.index]!, code: f.code, message: f.message })));
      });
      w.on("error", (e) => {
        this.failure = e;
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        this.wake();
      });
      this.workers.push(w);
    }
  }

  private wake(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  private async takeSlot(): Promise<number> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const s = this.freeSlots.pop();
      if (s !== undefined) return s;
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  private giveSlot(slot: number, bytes: number): void {
    this.bytesInFlight -= bytes;
    this.freeSlots.push(slot);
    this.wake();
  }

  /**
   * Copies `body` into the shared buffer (the caller may drop its copy); waits
   * while every slot is busy. With `transfer`, a body bigger than a slot that
   * spans its whole ArrayBuffer is moved to the worker instead of copied (the
   * caller's view is detached: it must not be used again, nor be shared).
   */
  async add(file: F, body: Uint8Array, opts: { transfer?: boolean } = {}): Promise<void> {
    if (body.length > this.slotBytes) {
      this.flush();
      // Alone, in a buffer of its own, holding a slot's place in the budget while it is written.
      const slot = await this.takeSlot();
      const whole =
        opts.transfer === true &&
        body.buffer instanceof ArrayBuffer &&
        body.byteOffset === 0 &&
        body.byteLength === body.buffer.byteLength;
      let own: ArrayBuffer;
      if (whole) {
        own = body.buffer as ArrayBuffer;
        this.movedBytes += body.length;
      } else {
        const copy = new Uint8Array(body.length);
        copy.set(body);
        own = copy.buffer;
      }
      this.send({ files: [file], lengths: [body.length], slot, bytes: body.length }, own);
      return;
    }
    if (this.batch && (this.batch.bytes + body.length > this.slotBytes || this.batch.files.length >= this.batchFiles))
      this.flush();
    if (!this.batch) this.batch = { files: [], lengths: [], slot: await this.takeSlot(), bytes: 0 };
    const b = this.batch;
    this.shared.set(body, b.slot * this.slotBytes + b.bytes);
    b.files.push(file);
    b.lengths.push(body.length);
    b.bytes += body.length;
    this.bytesInFlight += body.length;
    if (this.bytesInFlight > this.peakBytesInFlight) this.peakBytesInFlight = this.bytesInFlight;
  }

  /** Sends the current batch (it holds its slot until written: the next batch waits in `takeSlot`). */
  private flush(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    this.send(b);
  }

  private send(b: Batch<F>, own?: ArrayBuffer): void {
    if (own) {
      this.bytesInFlight += b.bytes;
      if (this.bytesInFlight > this.peakBytesInFlight) this.peakBytesInFlight = this.bytesInFlight;
    }
    const id = ++this.id;
    const worker = this.workers[this.next++ % this.workers.length]!;
    const files = b.files;
    const done = new Promise<PoolFailure<F>[]>((resolve, reject) => this.pending.set(id, { files, resolve, reject }));
    worker.postMessage(
      {
        id,
        buffer: own,
        offset: own ? 0 : b.slot * this.slotBytes,
        paths: files.map((f) => f.path),
        lengths: b.lengths,
        modes: files.map((f) => f.mode),
        mtimes: files.map((f) => f.mtime),
      },
      own ? [own] : [],
    );
    const settled = done.then(
      (failed) => {
        this.giveSlot(b.slot, b.bytes);
        this.onDone(files, failed);
      },
      (e: unknown) => {
        this.giveSlot(b.slot, b.bytes);
        throw e;
      },
    );
    this.inFlight.add(settled);
    const forget = (): void => void this.inFlight.delete(settled);
    settled.then(forget, forget);
  }

  /** Sends what is queued and waits until every file is on disk. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
