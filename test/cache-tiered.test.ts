import { describe, expect, it } from "vitest";
import { FsIndexCache } from "../src/cache/fs.js";
import { MemoryIndexCache } from "../src/cache/memory.js";
import { TieredIndexCache } from "../src/cache/tiered.js";
import { DesInvalidArgumentError } from "../src/errors.js";
import type { IndexCache, IndexCacheStats } from "../src/io/cache.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-tiered-");

/** A tier that records its calls and can be made to fail. */
class Recording implements IndexCache {
  readonly inner = new MemoryIndexCache({ maxBytes: 1 << 20 });
  calls: string[] = [];
  failing = false;
  private check(what: string): void {
    this.calls.push(what);
    if (this.failing) throw new Error("tier down");
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(`get ${key}`);
    return this.inner.get(key);
  }
  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.check(`getMany ${keys.join(",")}`);
    return this.inner.getMany(keys);
  }
  async set(key: string, bytes: Uint8Array): Promise<void> {
    this.check(`set ${key}`);
    return this.inner.set(key, bytes);
  }
  async delete(key: string): Promise<void> {
    this.check(`delete ${key}`);
    return this.inner.delete(key);
  }
  async deletePrefix(prefix: string): Promise<number> {
    this.check(`deletePrefix ${prefix}`);
    return this.inner.deletePrefix(prefix);
  }
  stats(): IndexCacheStats {
    return this.inner.stats();
  }
}

describe("TieredIndexCache", () => {
  it("reads through in order and fills the tiers above a hit", async () => {
    const mem = new MemoryIndexCache({ maxBytes: 1 << 20 });
    const fsTier = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    const far = new Recording();
    const t = new TieredIndexCache([mem, fsTier, far]);
    const v = Uint8Array.of(1, 2, 3);
    await far.inner.set("k", v);
    expect(await t.get("k")).toEqual(v);
    expect(mem.getSync("k")).toEqual(v);
    expect(await new FsIndexCache({ dir, maxBytes: 1 << 20 }).get("k")).toEqual(v);
    far.calls = [];
    expect(await t.get("k")).toEqual(v);
    expect(far.calls).toEqual([]); // served by memory
    expect(t.stats()).toMatchObject({ hits: 2, misses: 0, hitsByTier: [1, 0, 1] });
    expect(await t.get("absent")).toBeUndefined();
    expect(t.stats().misses).toBe(1);
  });

  it("getMany asks each tier once, for the keys still missing", async () => {
    const a = new Recording();
    const b = new Recording();
    const c = new Recording();
    const t = new TieredIndexCache([a, b, c]);
    await a.inner.set("k1", Uint8Array.of(1));
    await b.inner.set("k2", Uint8Array.of(2));
    await c.inner.set("k3", Uint8Array.of(3));
    const got = await t.getMany(["k1", "k2", "k3", "k4"]);
    expect(got).toEqual([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3), undefined]);
    expect(a.calls).toEqual(["getMany k1,k2,k3,k4", "set k2", "set k3"]);
    expect(b.calls).toEqual(["getMany k2,k3,k4", "set k3"]);
    expect(c.calls).toEqual(["getMany k3,k4"]);
    expect(t.stats()).toMatchObject({ hits: 3, misses: 1, hitsByTier: [1, 1, 1] });
  });

  it("set, delete and deletePrefix reach every tier", async () => {
    const a = new Recording();
    const b = new Recording();
    const t = new TieredIndexCache([a, b]);
    await t.set("p|1", Uint8Array.of(1));
    await t.set("p|2", Uint8Array.of(2));
    await t.set("q|1", Uint8Array.of(3));
    expect(await b.inner.get("p|1")).toEqual(Uint8Array.of(1));
    expect(await t.deletePrefix("p|")).toBe(2);
    expect(await a.inner.get("p|2")).toBeUndefined();
    expect(await b.inner.get("p|2")).toBeUndefined();
    await t.delete("q|1");
    expect(await b.inner.get("q|1")).toBeUndefined();
  });

  it("a failing tier is skipped and counted; the others still answer", async () => {
    const a = new Recording();
    const b = new Recording();
    const t = new TieredIndexCache([a, b]);
    await b.inner.set("k", Uint8Array.of(7));
    a.failing = true;
    expect(await t.get("k")).toEqual(Uint8Array.of(7));
    expect(await t.getMany(["k", "x"])).toEqual([Uint8Array.of(7), undefined]);
    await t.set("k2", Uint8Array.of(8));
    expect(await b.inner.get("k2")).toEqual(Uint8Array.of(8));
    expect(t.stats().errors).toBeGreaterThanOrEqual(4);
  });

  it("needs at least one tier", () => {
    expect(() => new TieredIndexCache([])).toThrow(DesInvalidArgumentError);
  });
});
