import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { DesAbortedError, DesInvalidArgumentError, throwIfAborted } from "./errors.js";

/**
 * Reading many small files is dominated by per-file system calls (open,
 * fstat, read, close), not bytes. Done through libuv's thread pool that is
 * four round trips per file, each waking the event loop; done synchronously
 * on the main thread it blocks the event loop. So the reads run in worker
 * threads, back to back with synchronous calls, and come back in batches in
 * a few recycled buffers: the caller's thread only hashes and writes, the
 * two overlap, and memory stays at `workers * buffers * bufferBytes`.
 *
 * Names go out in chunks, dealt round-robin to the workers; a batch never
 * spans two chunks, so the caller takes chunk 0 from worker 0, chunk 1 from
 * worker 1, ... and sees every file in order.
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no
 * separate file in either the ESM or the CJS build.
 */
const WORKER_SOURCE = `
"use strict";
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
// root ends with the separator; names use "/", which every platform accepts.
let root = "";
let limit = 0;
const O_RDONLY = fs.constants.O_RDONLY;
let failed = false;
const chunks = [];
const free = [];
// A file of the current chunk opened and measured that did not fit in the previous buffer.
let carry;
function open(name) {
  let fd;
  try {
    fd = fs.openSync(root + name, O_RDONLY);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error("not a regular file");
    return { fd, size: st.size };
  } catch (e) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    return { error: e };
  }
}
function fill(buffer) {
  const chunk = chunks[0];
  const bytes = new Uint8Array(buffer);
  const first = chunk.next;
  const lens = [];
  let used = 0;
  let error;
  while (chunk.next < chunk.names.length) {
    const f = carry || open(chunk.names[chunk.next]);
    carry = undefined;
    if (f.error) {
      error = { index: chunk.next, message: String(f.error.message) };
      break;
    }
    if (f.size > limit) {
      fs.closeSync(f.fd);
      lens.push(-1);
      chunk.next++;
      continue;
    }
    if (used + f.size > bytes.length) { carry = f; break; }
    let got = 0;
    try {
      while (got < f.size) {
        const n = fs.readSync(f.fd, bytes, used + got, f.size - got, got);
        if (n === 0) break;
        got += n;
      }
    } catch (e) {
      error = { index: chunk.next, message: String(e.message) };
    } finally {
      try { fs.closeSync(f.fd); } catch {}
    }
    if (error) break;
    lens.push(got);
    used += got;
    chunk.next++;
  }
  if (error) failed = true;
  const done = chunk.next >= chunk.names.length;
  if (done) chunks.shift();
  const lengths = new Float64Array(lens);
  parentPort.postMessage({ chunk: chunk.id, first, lengths, buffer, error, done }, [buffer, lengths.buffer]);
}
function pump() {
  while (free.length > 0 && chunks.length > 0 && !failed) fill(free.shift());
}
parentPort.on("message", (m) => {
  if (m.root !== undefined) { root = m.root.endsWith(path.sep) ? m.root : m.root + path.sep; limit = m.limit; }
  if (m.chunk) chunks.push({ id: m.chunk.id, names: m.chunk.names, next: 0 });
  if (m.buffer) free.push(m.buffer);
  pump();
});
`;

interface Batch {
  readonly chunk: number;
  readonly first: number;
  readonly lengths: Float64Array;
  readonly buffer: ArrayBuffer;
  readonly done: boolean;
  readonly error?: { index: number; message: string };
}

export interface ReadAheadOptions {
  /** Files above this size are not read: the iterator yields `undefined` and the caller streams them. */
  readonly wholeLimit: number;
  /** Bytes per batch buffer (at least `wholeLimit`). Default 4 MiB. */
  readonly bufferBytes?: number;
  /** Buffers in rotation per worker: one being consumed, the rest being filled. Default 2. */
  readonly buffers?: number;
  /** Reader threads. Default 2 (1 on a single-core machine). */
  readonly workers?: number;
  readonly signal?: AbortSignal;
}

/** Names per chunk: the unit dealt to one worker. */
const CHUNK = 1024;

class ReaderThread {
  readonly worker: Worker;
  private readonly ready: Batch[] = [];
  private waiting: { resolve: (b: Batch) => void; reject: (e: unknown) => void } | undefined;
  private broken: unknown;

  constructor(root: string, limit: number) {
    // No inherited --import / --require flags: the worker uses only node builtins,
    // and a loader (tsx, a test runner's) would only slow its start.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    this.worker.on("message", (b: Batch) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w.resolve(b);
      else this.ready.push(b);
    });
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => this.fail(new Error(`read-ahead worker exited (${code})`)));
    this.worker.postMessage({ root, limit });
  }

  fail(e: unknown): void {
    this.broken ??= e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.broken);
  }

  next(): Promise<Batch> {
    const b = this.ready.shift();
    if (b) return Promise.resolve(b);
    if (this.broken !== undefined) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  send(message: unknown, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(message, transfer);
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners("exit");
    this.worker.on("error", () => undefined);
    await this.worker.terminate();
  }
}

/**
 * Yields `[name, bytes]` for each file `path.join(root, name)`, in the order
 * `more` hands names out (it returns up to `max` more names, or none at the
 * end). `bytes` is undefined for a file larger than `wholeLimit` (the caller
 * streams it). A yielded view is valid only until the iterator is resumed
 * (its buffer is then recycled), so copy it or finish with it first. A file
 * that cannot be read throws at its turn, after every earlier file.
 */
export async function* readFilesAhead(
  root: string,
  more: (max: number) => Promise<readonly string[]>,
  opts: ReadAheadOptions,
): AsyncGenerator<[string, Uint8Array | undefined]> {
  throwIfAborted(opts.signal);
  const first = await more(CHUNK);
  if (first.length === 0) return;
  const bufferBytes = Math.max(opts.bufferBytes ?? 4 << 20, opts.wholeLimit);
  const want = opts.workers ?? Math.min(2, os.availableParallelism?.() ?? os.cpus().length);
  // A tree that fits in one chunk keeps one thread busy at most.
  const workerCount = Math.max(1, first.length < CHUNK ? 1 : want);
  const threads: ReaderThread[] = [];
  try {
    for (let i = 0; i < workerCount; i++) threads.push(new ReaderThread(root, opts.wholeLimit));
  } catch {
    await Promise.all(threads.map((t) => t.stop()));
    // No worker threads here (a restricted runtime): read in this thread, one file at a time.
    yield* readInThread(root, first, more, opts);
    return;
  }
  const onAbort = (): void => {
    for (const t of threads) t.fail(new DesAbortedError(undefined, { cause: opts.signal?.reason }));
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // Names dealt but not yet consumed, by chunk number; each worker holds at most two chunks ahead.
    const dealtNames = new Map<number, readonly string[]>();
    let dealt = 0;
    let exhausted = false;
    const deal = async (consumed: number): Promise<void> => {
      while (!exhausted && dealt < consumed + 2 * workerCount) {
        const names = dealt === 0 ? first : await more(CHUNK);
        if (names.length === 0) {
          exhausted = true;
          break;
        }
        dealtNames.set(dealt, names);
        threads[dealt % workerCount]!.send({ chunk: { id: dealt, names } });
        dealt++;
      }
    };
    await deal(0);
    for (const t of threads) {
      for (let i = 0; i < Math.max(2, opts.buffers ?? 2); i++) {
        const b = new ArrayBuffer(bufferBytes);
        t.send({ buffer: b }, [b]);
      }
    }
    for (let c = 0; c < dealt; c++) {
      const t = threads[c % workerCount]!;
      const names = dealtNames.get(c)!;
      let expect = 0;
      for (;;) {
        const batch = await t.next();
        if (batch.chunk !== c || batch.first !== expect) {
          throw new Error(`read-ahead out of step: got chunk ${batch.chunk} at ${batch.first}, expected chunk ${c} at ${expect}`);
        }
        const bytes = new Uint8Array(batch.buffer);
        let at = 0;
        for (let k = 0; k < batch.lengths.length; k++) {
          const len = batch.lengths[k]!;
          const name = names[expect + k]!;
          if (len < 0) {
            yield [name, undefined];
          } else {
            yield [name, bytes.subarray(at, at + len)];
            at += len;
          }
        }
        expect += batch.lengths.length;
        if (batch.error) {
          throw new DesInvalidArgumentError(`cannot read ${path.join(root, names[batch.error.index]!)}: ${batch.error.message}`);
        }
        throwIfAborted(opts.signal);
        // Every view of this buffer has been handed out and released: give it back.
        t.send({ buffer: batch.buffer }, [batch.buffer]);
        if (batch.done) break;
      }
      dealtNames.delete(c);
      await deal(c + 1);
    }
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await Promise.all(threads.map((t) => t.stop()));
  }
}

async function* readInThread(
  root: string,
  first: readonly string[],
  more: (max: number) => Promise<readonly string[]>,
  opts: ReadAheadOptions,
): AsyncGenerator<[string, Uint8Array | undefined]> {
  for (let names = first; names.length > 0; names = await more(CHUNK)) {
    for (const name of names) {
      throwIfAborted(opts.signal);
      const p = path.join(root, name);
      let bytes: Buffer;
      try {
        const st = await fs.promises.stat(p);
        if (st.size > opts.wholeLimit) {
          yield [name, undefined];
          continue;
        }
        bytes = await fs.promises.readFile(p);
      } catch (e) {
        throw new DesInvalidArgumentError(`cannot read ${p}: ${(e as Error).message}`);
      }
      yield [name, bytes];
    }
  }
}
