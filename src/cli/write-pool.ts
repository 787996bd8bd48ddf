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
 */
const WORKER_SOURCE = `
"use strict";
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const C = fs.constants;
const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | (C.O_NOFOLLOW || 0);
parentPort.on("message", (m) => {
  const bytes = new Uint8Array(m.buffer);
  const failed = [];
  let at = 0;
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

export interface PoolFile {
  readonly path: string;
  readonly body: Uint8Array;
  readonly mode: number;
  /** Seconds since the epoch, or NaN to leave the time alone. */
  readonly mtime: number;
}

export interface PoolFailure<F extends PoolFile = PoolFile> {
  readonly file: F;
  readonly code: string;
  readonly message: string;
}

/** Files per batch and bytes per batch, at most. */
const BATCH_FILES = 256;
const BATCH_BYTES = 4 << 20;

export class WritePool<F extends PoolFile = PoolFile> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { files: F[]; resolve: (f: PoolFailure<F>[]) => void; reject: (e: unknown) => void }
  >();
  private inFlight: Promise<void>[] = [];
  private next = 0;
  private id = 0;
  private batch: F[] = [];
  private batchBytes = 0;

  constructor(
    /** Called for each batch once its files are on disk (failures: names that exist, errors). */
    private readonly onDone: (files: readonly F[], failed: readonly PoolFailure<F>[]) => void,
    count = Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length)),
  ) {
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        resourceLimits: { maxYoungGenerationSizeMb: 4 },
      });
      w.on("message", (m: { id: number; failed: { index: number; code: string; message: string }[] }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve(m.failed.map((f) => ({ file: p.files[f.index]!, code: f.code, message: f.message })));
      });
      w.on("error", (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /** Queues a new file; resolves once the queue has room again (at most two batches per worker in flight). */
  async add(file: F): Promise<void> {
    this.batch.push(file);
    this.batchBytes += file.body.length;
    if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) await this.flush();
  }

  /** Sends the current batch. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const files = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const total = files.reduce((s, f) => s + f.body.length, 0);
    const buffer = new ArrayBuffer(total);
    const view = new Uint8Array(buffer);
    let at = 0;
    for (const f of files) {
      view.set(f.body, at);
      at += f.body.length;
    }
    const id = ++this.id;
    const worker = this.workers[this.next++ % this.workers.length]!;
    const done = new Promise<PoolFailure<F>[]>((resolve, reject) => this.pending.set(id, { files, resolve, reject }));
    worker.postMessage(
      {
        id,
        buffer,
        paths: files.map((f) => f.path),
        lengths: files.map((f) => f.body.length),
        modes: files.map((f) => f.mode),
        mtimes: files.map((f) => f.mtime),
      },
      [buffer],
    );
    const settled = done.then((failed) => this.onDone(files, failed));
    this.inFlight.push(settled);
    settled.catch(() => undefined);
    if (this.inFlight.length >= 2 * this.workers.length) await this.inFlight.shift();
  }

  /** Sends what is queued and waits until every file is on disk. */
  async drain(): Promise<void> {
    await this.flush();
    const all = this.inFlight;
    this.inFlight = [];
    await Promise.all(all);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
