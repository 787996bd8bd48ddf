import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import { startWorker } from "../io/worker-script.js";
import type { ReadAheadBatch } from "./read-ahead-worker.js";
import { DesAbortedError, DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";

/**
 * Reading many small files is dominated by per-file system calls (open,
 * read, close), not bytes. Done through libuv's thread pool that is several
 * round trips per file, each waking the event loop; done synchronously on
 * the main thread it blocks the event loop. So the reads run in worker
 * threads, back to back with synchronous calls, and come back in batches in
 * a few recycled buffers: the caller's thread only hashes and writes, the
 * two overlap, and memory stays at `workers * buffers * bufferBytes`.
 *
 * A small file is read until read() returns 0, which finds its length
 * without an fstat (a tenth of the per-file cost); a file that fills the
 * first 64 KiB read (or the rest of the buffer) is measured, to decide
 * between reading on, the next buffer and streaming.
 *
 * Names go out in chunks, dealt round-robin to the workers, ahead of
 * consumption; a batch never spans two chunks, so the caller takes chunk 0
 * from worker 0, chunk 1 from worker 1, ... and sees every file in order.
 * A batch's buffer goes back to its worker when the caller releases it,
 * which may be after later batches (packDirectory releases a buffer once
 * the sink has written it, without copying).
 *
 * The worker is a module of its own (read-ahead-worker.ts, built as its
 * own entry).
 */
type Batch = ReadAheadBatch;

export interface ReadAheadOptions {
  /** Files above this size are not read: the iterator yields `undefined` and the caller streams them. */
  readonly wholeLimit: number;
  /** Bytes per batch buffer (at least `wholeLimit`). Default 4 MiB. */
  readonly bufferBytes?: number;
  /** Buffers in rotation per worker: those being consumed or written, the rest being filled. Default 2. */
  readonly buffers?: number;
  /** Reader threads. Default 2 (1 on a single-core machine). */
  readonly workers?: number;
  /** Check each opened file is a regular file and return its stat (see `ReadBatch.stats`). */
  readonly stats?: boolean;
  readonly signal?: AbortSignal;
}

/** Numbers per file in `ReadBatch.stats`: mode, mtimeMs, uid, gid, dev, ino, nlink. */
export const STAT_FIELDS = 7;

/** Names per chunk: the unit dealt to one worker. */
const CHUNK = 1024;
/** Chunks dealt ahead to each worker: names are cheap, and a worker that runs out of them idles. */
const AHEAD = 4;

class ReaderThread {
  readonly worker: Worker;
  private readonly ready: Batch[] = [];
  private waiting: { resolve: (b: Batch) => void; reject: (e: unknown) => void } | undefined;
  private broken: unknown;

  constructor(root: string, limit: number, stats: boolean) {
    // No inherited --import / --require flags: the worker uses only node builtins,
    // and a loader (tsx, a test runner's) would only slow its start. Its garbage is
    // short-lived (names, small objects per file): a small young generation keeps
    // it from growing to V8's default of tens of megabytes per thread.
    this.worker = startWorker(import.meta.url, "read-ahead-worker", {
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    this.worker.on("message", (b: Batch) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w.resolve(b);
      else this.ready.push(b);
    });
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => this.fail(new DesIoError(`read-ahead worker exited (${code})`)));
    this.worker.postMessage({ root, limit, stats });
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

  private stopped = false;

  send(message: unknown, transfer?: ArrayBuffer[]): void {
    // A buffer may come back after the reading is over (still being written): drop it.
    if (this.stopped) return;
    this.worker.postMessage(message, transfer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.worker.removeAllListeners("exit");
    this.worker.on("error", () => undefined);
    await this.worker.terminate();
  }
}

/**
 * Files read by one reader thread, in order: the bodies of the files whose
 * `lengths[k] >= 0` lie back to back in `bytes`; `lengths[k] < 0` marks a
 * file larger than `wholeLimit`, which was not read (the caller streams it).
 */
export interface ReadBatch {
  readonly names: readonly string[];
  readonly lengths: Float64Array;
  /** With the `stats` option: STAT_FIELDS numbers per file, from fstat of the file that was read. */
  readonly stats: Float64Array;
  readonly bytes: Uint8Array;
  /**
   * Gives the buffer back to its reader thread. Call it exactly once, after
   * the last use of `bytes` (it may be later than the next batch: reading
   * stalls only when every buffer is out).
   */
  release(): void;
}

/**
 * Yields the files `path.join(root, name)` in batches, in the order `more`
 * hands names out (it returns up to `max` more names, or none at the end).
 * A file that cannot be read throws at its turn, after a batch holding every
 * earlier file.
 */
export async function* readBatchesAhead(
  root: string,
  more: (max: number) => Promise<readonly string[]>,
  opts: ReadAheadOptions,
): AsyncGenerator<ReadBatch> {
  throwIfAborted(opts.signal);
  const first = await more(CHUNK);
  if (first.length === 0) return;
  const bufferBytes = Math.max(opts.bufferBytes ?? 4 << 20, opts.wholeLimit);
  const want = opts.workers ?? Math.min(2, os.availableParallelism?.() ?? os.cpus().length);
  // A tree that fits in one chunk keeps one thread busy at most.
  const workerCount = Math.max(1, first.length < CHUNK ? 1 : want);
  const threads: ReaderThread[] = [];
  try {
    for (let i = 0; i < workerCount; i++) threads.push(new ReaderThread(root, opts.wholeLimit, opts.stats ?? false));
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
    // Names dealt but not yet consumed, by chunk number. Dealing runs on its own, ahead of
    // consumption (each worker holds up to AHEAD chunks), so walking the tree for more names
    // never holds up the consumer, and a worker finishing a chunk always has the next one.
    const dealtNames = new Map<number, readonly string[]>();
    let dealt = 0;
    let consumed = 0;
    let exhausted = false;
    let walkError: { error: unknown } | undefined;
    let dealing = false;
    let wake: (() => void) | undefined;
    const deal = async (): Promise<void> => {
      if (dealing) return;
      dealing = true;
      try {
        while (!exhausted && dealt < consumed + AHEAD * workerCount) {
          const names = dealt === 0 ? first : await more(CHUNK);
          if (names.length === 0) {
            exhausted = true;
            break;
          }
          dealtNames.set(dealt, names);
          // One string per chunk: far cheaper to pass between threads than an array of them.
          threads[dealt % workerCount]!.send({ chunk: { id: dealt, names: names.join("\0") } });
          dealt++;
          wake?.();
        }
      } catch (e) {
        walkError ??= { error: e };
        exhausted = true;
      } finally {
        dealing = false;
        wake?.();
      }
    };
    await deal();
    for (const t of threads) {
      for (let i = 0; i < Math.max(2, opts.buffers ?? 2); i++) {
        const b = new ArrayBuffer(bufferBytes);
        t.send({ buffer: b }, [b]);
      }
    }
    for (let c = 0; ; c++) {
      while (c >= dealt && !exhausted) {
        void deal();
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      if (walkError) throw walkError.error;
      if (c >= dealt) break;
      const t = threads[c % workerCount]!;
      const names = dealtNames.get(c)!;
      let expect = 0;
      for (;;) {
        const batch = await t.next();
        if (batch.chunk !== c || batch.first !== expect) {
          throw new DesIoError(
            `read-ahead out of step: got chunk ${batch.chunk} at ${batch.first}, expected chunk ${c} at ${expect}`,
          );
        }
        const n = batch.lengths.length;
        let used = 0;
        for (let k = 0; k < n; k++) if (batch.lengths[k]! > 0) used += batch.lengths[k]!;
        const buffer = batch.buffer;
        let released = false;
        yield {
          names: names.slice(expect, expect + n),
          lengths: batch.lengths,
          stats: batch.stats,
          bytes: new Uint8Array(buffer, 0, used),
          release: () => {
            if (released) return;
            released = true;
            t.send({ buffer }, [buffer]);
          },
        };
        expect += n;
        if (batch.error) {
          throw new DesInvalidArgumentError(
            `cannot read ${path.join(root, names[batch.error.index]!)}: ${batch.error.message}`,
          );
        }
        throwIfAborted(opts.signal);
        if (batch.done) break;
      }
      dealtNames.delete(c);
      consumed = c + 1;
      void deal();
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
): AsyncGenerator<ReadBatch> {
  const release = (): void => undefined;
  const flags = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0);
  for (let names = first; names.length > 0; names = await more(CHUNK)) {
    for (const name of names) {
      throwIfAborted(opts.signal);
      const p = path.join(root, name);
      let bytes: Buffer;
      let stats: Float64Array;
      const fh = await fs.promises.open(p, flags).catch((e: Error) => {
        throw new DesInvalidArgumentError(`cannot read ${p}: ${e.message}`);
      });
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new Error("not a regular file");
        stats = opts.stats
          ? Float64Array.of(st.mode, st.mtimeMs, st.uid, st.gid, st.dev, st.ino, st.nlink)
          : new Float64Array(0);
        if (st.size > opts.wholeLimit) {
          yield { names: [name], lengths: Float64Array.of(-1), stats, bytes: new Uint8Array(0), release };
          continue;
        }
        bytes = await fh.readFile();
      } catch (e) {
        throw new DesInvalidArgumentError(`cannot read ${p}: ${(e as Error).message}`);
      } finally {
        await fh.close();
      }
      yield { names: [name], lengths: Float64Array.of(bytes.length), stats, bytes, release };
    }
  }
}
