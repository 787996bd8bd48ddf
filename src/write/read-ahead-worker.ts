/**
 * A read-ahead thread (see read-ahead.ts): opens, reads and closes the files
 * of the chunks of names dealt to it, back to back with synchronous calls,
 * into the buffers the caller hands it, and sends each filled buffer back.
 * Only node builtins: it runs in a thread of its own, built as an entry of
 * its own.
 */
import fs from "node:fs";
import path from "node:path";
import { parentPort } from "node:worker_threads";

/** What the caller sends: the root and size limit (first), chunks of names, free buffers. */
export interface ReadAheadRequest {
  readonly root?: string;
  readonly limit?: number;
  /** Check each opened file is a regular file and send back its stat (STAT_FIELDS numbers per file). */
  readonly stats?: boolean;
  /** Names joined with NUL: one string is far cheaper to pass between threads than an array. */
  readonly chunk?: { readonly id: number; readonly names: string };
  readonly buffer?: ArrayBuffer;
}

/** One filled buffer: the files `first..first+lengths.length` of chunk `chunk`. */
export interface ReadAheadBatch {
  readonly chunk: number;
  readonly first: number;
  readonly lengths: Float64Array;
  /** With `stats`: mode, mtimeMs, uid, gid, dev, ino, nlink of each file read (from fstat of the opened file). */
  readonly stats: Float64Array;
  readonly buffer: ArrayBuffer;
  readonly done: boolean;
  readonly error?: { index: number; message: string };
}

interface OpenFile {
  readonly fd: number;
  /** -1 until measured. */
  size: number;
  stat?: number[];
}

interface Chunk {
  readonly id: number;
  readonly names: string[];
  next: number;
}

// root ends with the separator; names use "/", which every platform accepts.
let root = "";
let limit = 0;
// O_NONBLOCK changes nothing for a regular file, and keeps a FIFO put in a file's place from blocking open();
// O_NOFOLLOW refuses a symbolic link put in a file's place after the walk saw a regular file.
const O_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK || 0) | (fs.constants.O_NOFOLLOW || 0);
let withStats = false;
let failed = false;
const chunks: Chunk[] = [];
const free: ArrayBuffer[] = [];
// A file of the current chunk, opened and measured, that did not fit in the previous buffer.
let carry: OpenFile | undefined;

/** Reads the file from offset `from` into bytes[at + from, at + max) until that is full or the file ends; returns the file offset reached. */
function readUpTo(fd: number, bytes: Uint8Array, at: number, from: number, max: number): number {
  let got = from;
  while (got < max) {
    const n = fs.readSync(fd, bytes, at + got, max - got, got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

// The first read of a file asks for this much at most: reading on until read() returns 0 finds
// the length of a smaller file without an fstat (a tenth of the cost of a small file); a bigger
// one is measured first, so a file that is then streamed costs one probe, not a buffer's worth.
const PROBE = 64 * 1024;

/**
 * Reads the next file into bytes at `used`: its length, -1 when it is over
 * the limit (not read), or undefined when it does not fit (then it is the
 * carry for the next buffer).
 */
function readFile(f: OpenFile, bytes: Uint8Array, used: number): number | undefined {
  let got = 0;
  if (f.size < 0) {
    const probe = Math.min(bytes.length - used, PROBE);
    got = readUpTo(f.fd, bytes, used, 0, probe);
    if (got < probe && got > 0) return got;
    // An empty read is checked too: a FIFO (swapped in after the walk) reads as empty.
    const st = fs.fstatSync(f.fd);
    if (!st.isFile()) throw new Error("not a regular file");
    if (got < probe) return got;
    if (st.size <= got) {
      // The size stat gives is not the content's (procfs and the like say 0): read to the end, or refuse.
      got = readUpTo(f.fd, bytes, used, got, bytes.length - used);
      if (used + got >= bytes.length)
        throw new Error(`its size is unknown (stat says ${st.size}) and it does not fit in a read buffer`);
      return got;
    }
    f.size = st.size;
  }
  if (f.size > limit) return -1;
  if (used + f.size > bytes.length) return undefined;
  // A carried file starts over in its new buffer; a measured one goes on after the probe.
  return readUpTo(f.fd, bytes, used, got, f.size);
}

function fill(buffer: ArrayBuffer): void {
  const chunk = chunks[0]!;
  const bytes = new Uint8Array(buffer);
  const first = chunk.next;
  const lens: number[] = [];
  const stats: number[] = [];
  let used = 0;
  let error: { index: number; message: string } | undefined;
  while (chunk.next < chunk.names.length) {
    let f = carry;
    carry = undefined;
    if (!f) {
      try {
        f = { fd: fs.openSync(root + chunk.names[chunk.next], O_FLAGS), size: -1 };
      } catch (e) {
        error = { index: chunk.next, message: String((e as Error).message) };
        break;
      }
    }
    let len: number | undefined;
    try {
      if (withStats && !f.stat) {
        const st = fs.fstatSync(f.fd);
        if (!st.isFile()) throw new Error("not a regular file");
        f.stat = [st.mode, st.mtimeMs, st.uid, st.gid, st.dev, st.ino, st.nlink];
      }
      len = readFile(f, bytes, used);
    } catch (e) {
      error = { index: chunk.next, message: String((e as Error).message) };
    }
    if (len === undefined && !error) {
      carry = f;
      break;
    }
    try {
      fs.closeSync(f.fd);
    } catch {
      // closing a file we only read cannot lose data
    }
    if (error || len === undefined) break;
    lens.push(len);
    if (withStats) stats.push(...f.stat!);
    if (len > 0) used += len;
    chunk.next++;
  }
  if (error) failed = true;
  const done = chunk.next >= chunk.names.length;
  if (done) chunks.shift();
  const lengths = new Float64Array(lens);
  const st = new Float64Array(stats);
  const batch: ReadAheadBatch = error
    ? { chunk: chunk.id, first, lengths, stats: st, buffer, error, done }
    : { chunk: chunk.id, first, lengths, stats: st, buffer, done };
  parentPort!.postMessage(batch, [buffer, lengths.buffer, st.buffer]);
}

function pump(): void {
  while (free.length > 0 && chunks.length > 0 && !failed) fill(free.shift()!);
}

parentPort?.on("message", (m: ReadAheadRequest) => {
  if (m.root !== undefined) {
    root = m.root.endsWith(path.sep) ? m.root : m.root + path.sep;
    limit = m.limit ?? 0;
    withStats = m.stats ?? false;
  }
  if (m.chunk) chunks.push({ id: m.chunk.id, names: m.chunk.names.split("\0"), next: 0 });
  if (m.buffer) free.push(m.buffer);
  pump();
});
