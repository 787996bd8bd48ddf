/**
 * A least-recently-used map bounded by a byte budget (not an entry count: a
 * count bound lets a few huge values exhaust memory on serverless hosts).
 * Concurrent misses for one key share a single load.
 */
export class ByteLru<K, V> {
  // Assigned in the constructor (no field initializers): one function less to compile on a first open.
  declare private readonly map: Map<K, { value: V; bytes: number }>;
  declare private readonly loading: Map<K, Promise<V>>;
  declare private used: number;
  declare readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.map = new Map();
    this.loading = new Map();
    this.used = 0;
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, bytes: number): void {
    const old = this.map.get(key);
    if (old) {
      this.used -= old.bytes;
      this.map.delete(key);
    }
    if (bytes > this.maxBytes) return;
    this.map.set(key, { value, bytes });
    this.used += bytes;
    for (const [k, v] of this.map) {
      if (this.used <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= v.bytes;
    }
  }

  /** Whether `bytes` more fit without evicting anything. */
  hasRoom(bytes: number): boolean {
    return this.used + bytes <= this.maxBytes;
  }

  /** The cached value, or the result of `load` shared by every concurrent caller. */
  async getOrLoad(key: K, load: () => Promise<{ value: V; bytes: number }>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = load().then(
        ({ value, bytes }) => {
          this.loading.delete(key);
          this.set(key, value, bytes);
          return value;
        },
        (e: unknown) => {
          this.loading.delete(key);
          throw e;
        },
      );
      this.loading.set(key, pending);
    }
    return pending;
  }

  clear(): void {
    this.map.clear();
    this.loading.clear();
    this.used = 0;
  }
}
