import { DesInvalidArgumentError } from "../errors.js";
import type { IndexCache, IndexCacheStats } from "../io/cache.js";

/** What TieredIndexCache reports: the outcome across tiers, and each tier's own statistics. */
export interface TieredIndexCacheStats extends IndexCacheStats {
  /** Hits served by each tier (index = tier), before filling the tiers above it. */
  readonly hitsByTier: readonly number[];
  readonly tiers: readonly IndexCacheStats[];
}

/**
 * Several caches as one, fastest first (e.g. memory, then a folder, then
 * Redis). `get` asks each tier in order and copies a hit into every tier
 * above the one that had it ("fill upward"), so the next lookup stops at the
 * first tier. `getMany` does the same per tier with one batched call each
 * (a Redis tier answers all the keys still missing in one round trip).
 * `set`, `delete` and `deletePrefix` go to every tier. A tier that throws is
 * skipped (counted in `errors`); the others still answer.
 */
export class TieredIndexCache implements IndexCache {
  readonly tiers: readonly IndexCache[];
  private hits = 0;
  private misses = 0;
  private sets = 0;
  private errors = 0;
  private readonly hitsByTier: number[];

  constructor(tiers: readonly IndexCache[]) {
    if (!Array.isArray(tiers) || tiers.length === 0)
      throw new DesInvalidArgumentError("TieredIndexCache needs at least one tier");
    for (const t of tiers) {
      if (!t || typeof t.get !== "function" || typeof t.set !== "function")
        throw new DesInvalidArgumentError("every tier must be an IndexCache");
    }
    this.tiers = [...tiers];
    this.hitsByTier = this.tiers.map(() => 0);
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    for (let i = 0; i < this.tiers.length; i++) {
      const value = await this.guard(() => this.tiers[i]!.get(key, signal));
      if (value !== undefined) {
        this.hits++;
        this.hitsByTier[i]!++;
        await this.fill(i, [[key, value]]);
        return value;
      }
    }
    this.misses++;
    return undefined;
  }

  async getMany(keys: readonly string[], signal?: AbortSignal): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = keys.map(() => undefined);
    let left = keys.map((_, i) => i);
    for (let t = 0; t < this.tiers.length && left.length > 0; t++) {
      const tier = this.tiers[t]!;
      const asked = left.map((i) => keys[i]!);
      const got = await this.guard(() =>
        tier.getMany ? tier.getMany(asked, signal) : Promise.all(asked.map((k) => tier.get(k, signal))),
      );
      if (!got) continue;
      const filled: [string, Uint8Array][] = [];
      const still: number[] = [];
      left.forEach((i, j) => {
        const v = got[j];
        if (v !== undefined) {
          out[i] = v;
          filled.push([keys[i]!, v]);
        } else still.push(i);
      });
      this.hits += filled.length;
      this.hitsByTier[t]! += filled.length;
      await this.fill(t, filled);
      left = still;
    }
    this.misses += left.length;
    return out;
  }

  async set(key: string, bytes: Uint8Array, opts?: { readonly ttlMs?: number }): Promise<void> {
    this.sets++;
    await Promise.all(this.tiers.map((t) => this.guard(() => t.set(key, bytes, opts))));
  }

  async delete(key: string): Promise<void> {
    await Promise.all(this.tiers.map((t) => this.guard(() => t.delete(key))));
  }

  /** Purges every tier; returns the most any one tier dropped (tiers usually hold the same keys). */
  async deletePrefix(prefix: string): Promise<number> {
    const counts = await Promise.all(this.tiers.map((t) => this.guard(() => t.deletePrefix(prefix))));
    return Math.max(0, ...counts.map((n) => n ?? 0));
  }

  stats(): TieredIndexCacheStats {
    const tiers = this.tiers.map((t) => t.stats());
    return {
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      evictions: tiers.reduce((a, s) => a + s.evictions, 0),
      errors: this.errors + tiers.reduce((a, s) => a + s.errors, 0),
      bytes: tiers.reduce((a, s) => a + s.bytes, 0),
      entries: tiers[0]?.entries ?? 0,
      hitsByTier: [...this.hitsByTier],
      tiers,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.tiers.map((t) => this.guard(async () => t.close?.())));
  }

  /** Copies hits from tier `from` into the tiers above it. */
  private async fill(from: number, entries: readonly [string, Uint8Array][]): Promise<void> {
    if (from === 0 || entries.length === 0) return;
    const work: Promise<unknown>[] = [];
    for (let t = 0; t < from; t++) {
      const tier = this.tiers[t]!;
      for (const [k, v] of entries) work.push(this.guard(() => tier.set(k, v)));
    }
    await Promise.all(work);
  }

  private async guard<T>(op: () => Promise<T>): Promise<T | undefined> {
    try {
      return await op();
    } catch {
      this.errors++;
      return undefined;
    }
  }
}
