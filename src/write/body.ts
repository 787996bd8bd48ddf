import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { utf8Encode } from "../format/bytes.js";
import { DesAbortedError, DesInvalidArgumentError, throwIfAborted } from "../errors.js";

/**
 * A body to add: bytes (a Uint8Array, an ArrayBuffer or any ArrayBufferView),
 * a Node stream, any async iterable of chunks, or a regular file on disk.
 */
export type EntryData =
  Uint8Array | ArrayBuffer | ArrayBufferView | Readable | AsyncIterable<Uint8Array> | { readonly path: string };

/** A body after validation: its kind decided, a file already open and checked. */
export type Body =
  | { readonly kind: "bytes"; readonly bytes: Uint8Array; readonly size: number }
  | { readonly kind: "file"; readonly path: string; readonly handle: FileHandle; readonly size: number }
  | { readonly kind: "stream"; readonly source: AsyncIterable<unknown>; readonly size: number | undefined };

/** The bytes of an in-memory body form, or undefined when `data` is not one. */
export function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer))
    return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

function isAsyncIterable(data: object): data is AsyncIterable<unknown> {
  return typeof (data as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function";
}

function sizeMismatch(name: string, actual: number, declared: number): DesInvalidArgumentError {
  return new DesInvalidArgumentError(`${JSON.stringify(name)}: the body has ${actual} bytes, size says ${declared}`);
}

/**
 * Validates a body before anything is written: refuses what is not a body
 * (null, numbers, plain objects), a path that is not a regular file
 * (directories, FIFOs, sockets, devices: opened without blocking, then
 * checked, so a FIFO cannot hang the add), and a declared `size` that bytes
 * or a file contradict. A file comes back open: the caller must `closeBody`.
 */
export async function openBody(name: string, data: unknown, declaredSize: number | undefined): Promise<Body> {
  const bytes = bytesOf(data);
  if (bytes) {
    if (declaredSize !== undefined && declaredSize !== bytes.length)
      throw sizeMismatch(name, bytes.length, declaredSize);
    return { kind: "bytes", bytes, size: bytes.length };
  }
  if (data !== null && typeof data === "object") {
    if (isAsyncIterable(data)) return { kind: "stream", source: data, size: declaredSize };
    const p = (data as { path?: unknown }).path;
    if (typeof p === "string") return openFile(name, p, declaredSize);
  }
  throw new DesInvalidArgumentError(
    `${JSON.stringify(name)}: a body is a Uint8Array, ArrayBuffer or ArrayBufferView, a stream or async iterable of chunks, or { path }; got ${data === null ? "null" : Array.isArray(data) ? "an array" : typeof data}`,
  );
}

async function openFile(name: string, p: string, declaredSize: number | undefined): Promise<Body> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new DesInvalidArgumentError(`cannot read ${p}: ${(e as Error).message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? "a directory"
        : st.isFIFO()
          ? "a FIFO"
          : st.isSocket()
            ? "a socket"
            : st.isCharacterDevice() || st.isBlockDevice()
              ? "a device"
              : "not a regular file";
      throw new DesInvalidArgumentError(`${JSON.stringify(name)}: ${p} is ${kind}; only regular files can be added`);
    }
    if (declaredSize !== undefined && declaredSize !== st.size) throw sizeMismatch(name, st.size, declaredSize);
    return { kind: "file", path: p, handle, size: st.size };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e;
  }
}

/** Releases what `openBody` opened (a caller's stream stays the caller's). */
export async function closeBody(body: Body): Promise<void> {
  if (body.kind === "file") await body.handle.close().catch(() => undefined);
}

const SMALL_FILE = 1 << 20;

/**
 * The body as chunks of bytes. A stream body is read under `signal`: an
 * abort ends a stalled stream at once with DesAbortedError (the source is
 * told to stop, without waiting for it). String chunks are UTF-8 encoded;
 * any other chunk type is refused.
 */
export async function* chunksOf(body: Body, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  if (body.kind === "bytes") {
    yield body.bytes;
    return;
  }
  if (body.kind === "file") {
    const fh = body.handle;
    if (body.size <= SMALL_FILE) {
      // One read for small files: most archives are made of them.
      const buf = Buffer.allocUnsafe(body.size);
      let got = 0;
      while (got < body.size) {
        throwIfAborted(signal);
        const { bytesRead } = await fh.read(buf, got, body.size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got > 0) yield buf.subarray(0, got);
      return;
    }
    for (let pos = 0; pos < body.size;) {
      throwIfAborted(signal);
      // A fresh buffer per read: the sink may still hold the previous chunk.
      const buf = Buffer.allocUnsafe(Math.min(SMALL_FILE, body.size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
    return;
  }
  for await (const c of abortable(body.source, signal)) {
    if (typeof c === "string") yield utf8Encode(c);
    else if (c instanceof Uint8Array) yield c;
    else {
      const b = bytesOf(c);
      if (!b)
        throw new DesInvalidArgumentError("body chunks must be bytes (Uint8Array, ArrayBuffer or a view) or strings");
      yield b;
    }
  }
}

/** Iterates `source`, ending with DesAbortedError as soon as `signal` aborts, even while a `next()` is pending. */
async function* abortable(source: AsyncIterable<unknown>, signal: AbortSignal | undefined): AsyncGenerator<unknown> {
  if (!signal) {
    yield* source;
    return;
  }
  throwIfAborted(signal);
  const it = source[Symbol.asyncIterator]();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DesAbortedError(undefined, { cause: signal.reason }));
  });
  aborted.catch(() => undefined);
  signal.addEventListener("abort", onAbort, { once: true });
  let done = false;
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (!done) {
      // Not awaited: a source stuck in next() would hold the add forever.
      if (source instanceof Readable) source.destroy();
      else void Promise.resolve(it.return?.()).catch(() => undefined);
    }
  }
}
