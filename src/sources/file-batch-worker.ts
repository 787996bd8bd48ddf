/**
 * The batch reader thread (see file-batch-reader.ts): synchronous `pread`s
 * of many ranges of one descriptor, back to back, answered in one message.
 * Only node builtins: it runs in a thread of its own, built as an entry of
 * its own.
 */
import fs from "node:fs";
import { parentPort } from "node:worker_threads";

/** One batch: ranges of `fd`, as offsets and lengths. */
export interface BatchRequest {
  readonly id: number;
  readonly fd: number;
  readonly offsets: Float64Array;
  readonly lengths: Float64Array;
}

/** One buffer per range (transferred), or the failure's message. */
export interface BatchReply {
  readonly id: number;
  readonly buffers?: ArrayBuffer[];
  readonly error?: string;
}

/** Reads every range of a request; the caller gets independent memory per range without a copy. */
export function readBatch(m: BatchRequest): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (let i = 0; i < m.offsets.length; i++) {
    const off = m.offsets[i]!;
    const len = m.lengths[i]!;
    const buffer = new ArrayBuffer(len);
    const bytes = new Uint8Array(buffer);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(m.fd, bytes, got, len - got, off + got);
      if (n === 0) throw new Error(`ended at ${off + got}, expected ${off + len} bytes`);
      got += n;
    }
    buffers.push(buffer);
  }
  return buffers;
}

const port = parentPort;
if (port) {
  port.on("message", (m: BatchRequest) => {
    let reply: BatchReply;
    let transfer: ArrayBuffer[] = [];
    try {
      transfer = readBatch(m);
      reply = { id: m.id, buffers: transfer };
    } catch (e) {
      reply = { id: m.id, error: String((e as Error)?.message) };
    }
    port.postMessage(reply, transfer);
  });
}
