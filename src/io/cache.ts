/**
 * The index cache seam: bytes in, bytes out. A reader stores the raw tail and
 * raw index pages (v2) or the raw v1 index under keys it computes without any
 * I/O, so one cache can be shared by every reader of a process (memory), of a
 * machine (a folder such as Lambda's `/tmp`) or of a fleet (Redis).
 *
 * Values are opaque to the cache. The reader frames what it stores (a format
 * byte and a checksum) and treats a value that fails its check as a miss,
 * deleting it; a cache never has to understand or validate what it holds.
 */
export interface IndexCache {
  /** The bytes stored under `key`, or undefined on a miss (or when the backend is unavailable). */
  get(key: string, signal?: AbortSignal): Promise<Uint8Array | undefined>;
  /**
   * Several keys in one round trip where the backend allows it (Redis
   * pipelines); results in the same order. Optional: callers fall back to `get`.
   */
  getMany?(keys: readonly string[], signal?: AbortSignal): Promise<(Uint8Array | undefined)[]>;
  /** Stores `bytes` under `key`; `ttlMs` bounds how long it is kept. May keep a reference to `bytes`. */
  set(key: string, bytes: Uint8Array, opts?: { readonly ttlMs?: number }): Promise<void>;
  delete(key: string): Promise<void>;
  /** Drops every key that starts with `prefix` (purging one archive); returns how many went. */
  deletePrefix(prefix: string): Promise<number>;
  stats(): IndexCacheStats;
  close?(): Promise<void>;
}

export interface IndexCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly sets: number;
  readonly evictions: number;
  /** Backend failures (timeouts, connection loss, corrupt values) that were served as misses. */
  readonly errors: number;
  /** Bytes currently held, where the backend knows it. */
  readonly bytes: number;
  readonly entries: number;
}
