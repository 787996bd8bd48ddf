import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { DesExternalError, DesInvalidArgumentError } from "../errors.js";

/**
 * Where bodies above the writer's `bigFileThreshold` live. The archive keeps
 * only the key (v2: in the index; v1: in the meta).
 */
export interface ExternalStore {
  /** Stores a body under `key`. */
  put(key: string, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void>;
  /**
   * Fetches a whole body. With `maxBytes`, a store reads at most that many
   * bytes (a body longer than that may be returned cut at `maxBytes`, or
   * refused): the reader asks for the declared size + 1, so an entry that
   * points at a huge object cannot make it allocate the object.
   */
  get(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): Promise<Uint8Array>;
  /** Streams a body. */
  stream(key: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

export interface ExternalGetOptions {
  readonly maxBytes?: number;
}

/** The key the Python writer uses for external bodies. */
export function defaultExternalKey(name: string, prefix: string | undefined): string {
  return prefix ? `${prefix.replace(/\/+$/, "")}/_bigFiles/${name}` : `_bigFiles/${name}`;
}

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
      throw new DesExternalError(`cannot store external body ${JSON.stringify(key)}: ${(e as Error).message}`, { cause: e });
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array> {
    try {
      const b = await fs.promises.readFile(this.pathOf(key), { signal });
      return new Uint8Array(b.buffer, b.byteOffset, b.length);
    } catch (e) {
      if (e instanceof DesInvalidArgumentError) throw e;
      throw new DesExternalError(`external body ${JSON.stringify(key)} is not readable: ${(e as Error).message}`, { cause: e });
    }
  }

  async *stream(key: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const file = this.pathOf(key);
    try {
      await fs.promises.access(file);
    } catch (e) {
      throw new DesExternalError(`external body ${JSON.stringify(key)} is not readable`, { cause: e });
    }
    for await (const chunk of fs.createReadStream(file, { signal, highWaterMark: 1 << 20 })) yield chunk as Uint8Array;
  }
}
