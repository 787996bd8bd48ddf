import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { DesAbortedError, DesError, DesExternalError, DesInvalidArgumentError, throwIfAborted } from "../errors.js";

/** Options of one external-body read. */
export interface ExternalGetOptions {
  /**
   * The most bytes the caller accepts (the entry's declared size). A store
   * reads at most `maxBytes + 1` bytes and fails with DES_EXTERNAL when the
   * body is longer, so a small entry pointing at a huge object costs
   * `maxBytes + 1` bytes of memory and transfer, not the object.
   */
  readonly maxBytes?: number;
}

/**
 * Where bodies above the writer's `bigFileThreshold` live. The archive keeps
 * only the key (v2: in the index; v1: in the meta).
 */
export interface ExternalStore {
  /** Stores a body under `key`. */
  put(key: string, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void>;
  /** Fetches a whole body (at most `opts.maxBytes`). */
  get(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): Promise<Uint8Array>;
  /** Streams a body (at most `opts.maxBytes`). */
  stream(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): AsyncIterable<Uint8Array>;
}

/** Validates `maxBytes`; undefined when unbounded. */
export function maxBytesOf(opts: ExternalGetOptions | undefined): number | undefined {
  const m = opts?.maxBytes;
  if (m === undefined) return undefined;
  if (!Number.isSafeInteger(m) || m < 0)
    throw new DesInvalidArgumentError(`maxBytes must be a non-negative integer, not ${String(m)}`);
  return m;
}

/** The key the Python writer uses for external bodies. */
export function defaultExternalKey(name: string, prefix: string | undefined): string {
  return prefix ? `${prefix.replace(/\/+$/, "")}/_bigFiles/${name}` : `_bigFiles/${name}`;
}

// O_NONBLOCK: a FIFO put in a body's place must not block open(); it does nothing for regular files.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** External bodies as files under one folder, `<root>/<key>`. */
export class LocalFolderStore implements ExternalStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Refuses keys that would escape the root. */
  pathOf(key: string): string {
    if (key.length === 0 || key.includes("\0") || path.isAbsolute(key)) {
      throw new DesInvalidArgumentError(`invalid external key ${JSON.stringify(key)}`);
    }
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep)) {
      throw new DesInvalidArgumentError(`external key ${JSON.stringify(key)} escapes ${this.root}`);
    }
    return full;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    const target = this.pathOf(key);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
    try {
      await pipeline(Readable.from(body), fs.createWriteStream(tmp), { signal });
      await fs.promises.rename(tmp, target);
    } catch (e) {
      await fs.promises.rm(tmp, { force: true });
      throw new DesExternalError(`cannot store external body ${JSON.stringify(key)}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /** Opens a body for reading: a regular file, never blocking on a FIFO; refuses one longer than `max`. */
  private async openBody(
    key: string,
    max: number | undefined,
  ): Promise<{ handle: fs.promises.FileHandle; size: number }> {
    const file = this.pathOf(key);
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, OPEN_FLAGS);
    } catch (e) {
      throw new DesExternalError(`external body ${JSON.stringify(key)} is not readable: ${(e as Error).message}`, {
        cause: e,
      });
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new DesExternalError(`external body ${JSON.stringify(key)} is not a regular file`);
      if (max !== undefined && st.size > max)
        throw new DesExternalError(
          `external body ${JSON.stringify(key)} is ${st.size} bytes, more than the ${max} expected`,
        );
      return { handle, size: st.size };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
  }

  async get(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): Promise<Uint8Array> {
    const max = maxBytesOf(opts);
    throwIfAborted(signal);
    const { handle, size } = await this.openBody(key, max);
    // Read to EOF (a file may report size 0 and have content), never more than max + 1 bytes.
    const limit = max === undefined ? Number.MAX_SAFE_INTEGER : max + 1;
    let buf = Buffer.allocUnsafe(Math.min(limit, size + 1));
    let got = 0;
    try {
      for (;;) {
        throwIfAborted(signal);
        if (got === buf.length) {
          if (buf.length >= limit) break;
          const bigger = Buffer.allocUnsafe(Math.min(limit, Math.max(buf.length * 2, 64 << 10)));
          buf.copy(bigger, 0, 0, got);
          buf = bigger;
        }
        const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (e) {
      if (e instanceof DesError) throw e;
      throw new DesExternalError(`external body ${JSON.stringify(key)} is not readable: ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      await handle.close().catch(() => undefined);
    }
    if (max !== undefined && got > max)
      throw new DesExternalError(`external body ${JSON.stringify(key)} is longer than the ${max} bytes expected`);
    return new Uint8Array(buf.buffer, buf.byteOffset, got);
  }

  async *stream(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): AsyncIterable<Uint8Array> {
    const max = maxBytesOf(opts);
    const { handle } = await this.openBody(key, max);
    let got = 0;
    try {
      const rs = handle.createReadStream({
        highWaterMark: 1 << 20,
        autoClose: false,
        ...(signal ? { signal } : {}),
        ...(max !== undefined ? { end: max } : {}),
      });
      for await (const chunk of rs) {
        const c = chunk as Uint8Array;
        got += c.length;
        if (max !== undefined && got > max)
          throw new DesExternalError(`external body ${JSON.stringify(key)} is longer than the ${max} bytes expected`);
        yield c;
      }
    } catch (e) {
      if (e instanceof DesError) throw e;
      if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
      throw new DesExternalError(`external body ${JSON.stringify(key)} is not readable: ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
}
