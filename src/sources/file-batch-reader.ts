import type { Worker } from "node:worker_threads";
import { DesAbortedError, DesIoError } from "../errors.js";
import { startWorker } from "../io/worker-script.js";
import type { BatchReply, BatchRequest } from "./file-batch-worker.js";

/**
 * Many small positional reads of one file descriptor, done in a worker
 * thread with synchronous `pread`s back to back.
 *
 * Why: an async `fs.read` costs a thread-pool round trip per range (on a
 * small VM about 8 µs of event-loop time to submit and wake, 15-20 µs in
 * all), several times the read itself when the bytes are in the page cache.
 * A batch of a few hundred ranges costs one message each way instead, and
 * the event loop never blocks on the disk.
 *
 * The worker is a module of its own (file-batch-worker.ts, built as its own
 * entry), started on first use, shared by every FileSource, and holding the
 * process open only while a batch is in flight.
 */
type Reply = BatchReply;

/**
 * One reader thread for the whole process: the descriptor travels with each
 * batch, so every FileSource shares it (an open archive costs no thread).
 */
class BatchReader {
  private worker: Worker | undefined;
  private online = false;
  private failed: unknown;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();

  private start(): Worker {
    if (this.worker) return this.worker;
    if (this.failed !== undefined) throw this.failed;
    let w: Worker;
    try {
      // No inherited --import / --require flags: the worker needs only node builtins.
      w = startWorker(import.meta.url, "file-batch-worker", { execArgv: [] });
    } catch (e) {
      this.failed = e;
      throw e;
    }
    w.once("online", () => {
      this.online = true;
    });
    w.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (this.pending.size === 0) w.unref();
      p?.resolve(r);
    });
    const fail = (e: unknown): void => {
      // A thread that died is replaced on next use; its batches fail now.
      this.worker = undefined;
      this.online = false;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new DesIoError(`batch reader thread exited (${code})`)));
    // After the listeners: adding a "message" listener refs the port again.
    w.unref();
    this.worker = w;
    return w;
  }

  /**
   * True once the thread is up. The first call starts it and answers false,
   * so callers read the first batches another way instead of waiting the
   * tens of milliseconds a thread takes to start. False for good where
   * worker threads cannot start.
   */
  ready(): boolean {
    if (this.online) return true;
    if (this.failed === undefined) {
      try {
        this.start();
      } catch {
        // failed is set: callers keep reading another way
      }
    }
    return false;
  }

  /**
   * Reads every range of `fd`; each result is its own memory (not a view
   * of a shared buffer, so holding one entry pins nothing else).
   */
  async read(
    fd: number,
    ranges: readonly { offset: number; length: number }[],
    key: string,
    signal?: AbortSignal,
  ): Promise<Uint8Array[]> {
    const offsets = new Float64Array(ranges.length);
    const lengths = new Float64Array(ranges.length);
    ranges.forEach((r, i) => {
      offsets[i] = r.offset;
      lengths[i] = r.length;
    });
    const w = this.start();
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    w.ref();
    const request: BatchRequest = { id, fd, offsets, lengths };
    w.postMessage(request, [offsets.buffer, lengths.buffer]);
    const r = await reply;
    if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
    if (r.error !== undefined || !r.buffers || r.buffers.length !== ranges.length) {
      throw new DesIoError(`read of ${key} failed: ${r.error ?? "no data"}`);
    }
    return r.buffers.map((b) => new Uint8Array(b));
  }
}

let shared: BatchReader | undefined;

/** The process-wide batch reader, created on first use. */
export function batchReader(): BatchReader {
  shared ??= new BatchReader();
  return shared;
}
