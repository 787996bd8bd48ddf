import { DesInvalidArgumentError } from "../errors.js";
import type { IndexCache, IndexCacheStats } from "../io/cache.js";

export interface MemoryIndexCacheOptions {
  /** Budget in bytes: values plus keys (two bytes per UTF-16 unit) plus a fixed overhead per entry. */
  readonly maxBytes: number;
  /** Default lifetime of an entry; `set(..., { ttlMs })` overrides it. Default: no expiry. */
  readonly ttlMs?: number;
}

/** What MemoryIndexCache reports, beyond the common IndexCacheStats. */
export interface MemoryIndexCacheStats extends IndexCacheStats {
  /** Entries dropped because their TTL ran out (not counted in `evictions`). */
  readonly expirations: number;
  readonly maxBytes: number;
}

interface Slot {
  readonly value: Uint8Array;
  readonly cost: number;
  readonly expiresAt: number;
}

/** Bookkeeping cost of one entry beyond its key and value (map slot, object, view). */
export const MEMORY_ENTRY_OVERHEAD = 96;

/**
 * An in-process IndexCache: least recently used first out, bounded in BYTES
 * (not in entries: an entry-count bound lets a few big indexes exhaust the
 * memory of a small serverless host). get, set and each eviction are O(1):
 * a Map keeps entries in recency order (a hit moves its key to the end, the
 * oldest is the first key). A value that views a much bigger buffer is
 * copied, so the budget counts what is really retained.
 */
export class MemoryIndexCache implements IndexCache {
  readonly maxBytes: number;
  private readonly ttlMs: number | undefined;
  private readonly map = new Map<string, Slot>();
  private used = 0;
  private hits = 0;
  private misses = 0;
  private sets = 0;
  private evictions = 0;
  private expirations = 0;

  constructor(opts: MemoryIndexCacheOptions) {
    if (!opts || !Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0) {
      throw new DesInvalidArgumentError("MemoryIndexCache needs maxBytes, an integer >= 0");
    }
    if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new DesInvalidArgumentError("ttlMs must be > 0");
    this.maxBytes = opts.maxBytes;
    this.ttlMs = opts.ttlMs;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.getSync(key);
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return keys.map((k) => this.getSync(k));
  }

  /** The synchronous form of `get` (the tiered cache and tests use it). */
  getSync(key: string): Uint8Array | undefined {
    const slot = this.map.get(key);
    if (!slot) {
      this.misses++;
      return undefined;
    }
    if (slot.expiresAt <= Date.now()) {
      this.remove(key, slot);
      this.expirations++;
      this.misses++;
      return undefined;
    }
    // Most recently used goes last.
    this.map.delete(key);
    this.map.set(key, slot);
    this.hits++;
    return slot.value;
  }

  async set(key: string, bytes: Uint8Array, opts: { readonly ttlMs?: number } = {}): Promise<void> {
    this.setSync(key, bytes, opts);
  }

  setSync(key: string, bytes: Uint8Array, opts: { readonly ttlMs?: number } = {}): void {
    this.sets++;
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    const cost = bytes.byteLength + key.length * 2 + MEMORY_ENTRY_OVERHEAD;
    if (cost > this.maxBytes) return; // would evict everything and still not fit
    const ttl = opts.ttlMs ?? this.ttlMs;
    if (ttl !== undefined && !(ttl > 0)) return;
    // Keep only what we count: a small view of a big buffer would retain the whole buffer.
    const value = bytes.buffer.byteLength > bytes.byteLength * 2 + 4096 ? bytes.slice() : bytes;
    this.map.set(key, { value, cost, expiresAt: ttl === undefined ? Infinity : Date.now() + ttl });
    this.used += cost;
    while (this.used > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value, this.map.get(oldest.value)!);
      this.evictions++;
    }
  }

  async delete(key: string): Promise<void> {
    const slot = this.map.get(key);
    if (slot) this.remove(key, slot);
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const [k, slot] of this.map) {
      if (k.startsWith(prefix)) {
        this.remove(k, slot);
        n++;
      }
    }
    return n;
  }

  stats(): MemoryIndexCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      evictions: this.evictions,
      expirations: this.expirations,
      errors: 0,
      bytes: this.used,
      entries: this.map.size,
      maxBytes: this.maxBytes,
    };
  }

  /** Drops every entry (statistics are kept). */
  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  async close(): Promise<void> {
    this.clear();
  }

  private remove(key: string, slot: Slot): void {
    this.map.delete(key);
    this.used -= slot.cost;
  }
}
