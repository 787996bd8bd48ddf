import type { IndexCache } from "../io/cache.js";
import { decodeRange, decodeTail, encodeRange, encodeTail } from "./cache-frame.js";
import type { CachedTail } from "./cache-frame.js";
import { SharedRegistry } from "./shared.js";

/** In-flight loads per cache, shared by every reader of the process that uses that cache. */
const inflightByCache = new WeakMap<IndexCache, SharedRegistry>();

/**
 * One archive's view of an IndexCache: the keys (computed without I/O from
 * the source key and the version token), the framing, and the rule that a
 * cache never fails a read: a backend error or a value that fails its check
 * is a miss (the bad value is deleted).
 */
export class CacheLink {
  readonly cache: IndexCache;
  readonly sourceKey: string;
  readonly prefix: string;
  private readonly ttlMs: number | undefined;
  private readonly writes = new Set<Promise<void>>();
  /** Fetches in flight for keys of this cache, process-wide. */
  readonly inflight: SharedRegistry;

  constructor(cache: IndexCache, sourceKey: string, ttlMs: number | undefined) {
    this.cache = cache;
    this.sourceKey = sourceKey;
    this.prefix = `des1|${sourceKey}|`;
    this.ttlMs = ttlMs;
    let m = inflightByCache.get(cache);
    if (!m) {
      m = new SharedRegistry();
      inflightByCache.set(cache, m);
    }
    this.inflight = m;
  }

  get tailKey(): string {
    return `${this.prefix}tail`;
  }

  rangeKey(version: string, offset: number, length: number): string {
    return `${this.prefix}${version}|${offset}+${length}`;
  }

  /** Work in flight under `key` (joined), or `start` run as new shared work. */
  shared<T>(key: string, start: (signal: AbortSignal | undefined) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const task = this.inflight.get<T>(key) ?? this.inflight.start([key], start, signal);
    return task.join(signal);
  }

  async getTail(signal?: AbortSignal): Promise<CachedTail | undefined> {
    const value = await this.safeGet(this.tailKey, signal);
    if (value === undefined) return undefined;
    const tail = decodeTail(value);
    if (!tail) this.drop(this.tailKey);
    return tail;
  }

  putTail(tail: { bytes: Uint8Array; size: number; version?: string | undefined }): void {
    if (tail.version === undefined) return;
    this.write(this.tailKey, encodeTail({ bytes: tail.bytes, size: tail.size, version: tail.version }));
  }

  /** Raw index ranges of one version, in order; undefined where the cache has nothing usable. */
  async getRanges(
    version: string,
    ranges: readonly { offset: number; length: number }[],
    signal?: AbortSignal,
  ): Promise<(Uint8Array | undefined)[]> {
    const keys = ranges.map((r) => this.rangeKey(version, r.offset, r.length));
    let values: (Uint8Array | undefined)[];
    try {
      if (this.cache.getMany && keys.length > 1) values = await this.cache.getMany(keys, signal);
      else values = await Promise.all(keys.map((k) => this.cache.get(k, signal)));
    } catch {
      return keys.map(() => undefined);
    }
    return ranges.map((r, i) => {
      const v = values[i];
      if (v === undefined) return undefined;
      const bytes = decodeRange(v, r.length);
      if (!bytes) this.drop(keys[i]!);
      return bytes;
    });
  }

  putRange(version: string, offset: number, bytes: Uint8Array): void {
    this.write(this.rangeKey(version, offset, bytes.length), encodeRange(bytes));
  }

  /** Waits for the writes issued so far (they never fail). */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  /** Drops every key of this archive (all versions); returns how many went. */
  async purge(): Promise<number> {
    await this.flush();
    try {
      return await this.cache.deletePrefix(this.prefix);
    } catch {
      return 0;
    }
  }

  private async safeGet(key: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    try {
      return await this.cache.get(key, signal);
    } catch {
      return undefined;
    }
  }

  private drop(key: string): void {
    this.track(() => this.cache.delete(key));
  }

  private write(key: string, value: Uint8Array): void {
    const ttlMs = this.ttlMs;
    this.track(() => (ttlMs !== undefined ? this.cache.set(key, value, { ttlMs }) : this.cache.set(key, value)));
  }

  private track(op: () => Promise<void>): void {
    const done = Promise.resolve()
      .then(op)
      .then(
        () => undefined,
        () => undefined,
      );
    this.writes.add(done);
    void done.then(() => this.writes.delete(done));
  }
}
