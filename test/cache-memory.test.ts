import { describe, expect, it } from "vitest";
import { MEMORY_ENTRY_OVERHEAD, MemoryIndexCache } from "../src/cache/memory.js";
import { DesInvalidArgumentError } from "../src/errors.js";
import { rng } from "../bench/lib.js";

const cost = (key: string, n: number): number => n + key.length * 2 + MEMORY_ENTRY_OVERHEAD;
const bytes = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);

describe("MemoryIndexCache", () => {
  it("round-trips bytes and counts hits, misses and sets", async () => {
    const c = new MemoryIndexCache({ maxBytes: 1 << 20 });
    const v = Uint8Array.from([0, 1, 2, 255]);
    await c.set("des1|a|tail", v);
    expect(await c.get("des1|a|tail")).toEqual(v);
    expect(await c.get("nope")).toBeUndefined();
    expect(await c.getMany(["nope", "des1|a|tail"])).toEqual([undefined, v]);
    expect(c.stats()).toMatchObject({
      hits: 2,
      misses: 2,
      sets: 1,
      evictions: 0,
      entries: 1,
      bytes: cost("des1|a|tail", 4),
    });
  });

  it("evicts the least recently used first; a hit refreshes recency", async () => {
    const per = cost("k0", 100);
    const c = new MemoryIndexCache({ maxBytes: per * 3 });
    for (const k of ["k0", "k1", "k2"]) await c.set(k, bytes(100));
    expect(await c.get("k0")).toBeDefined(); // k1 is now the oldest
    await c.set("k3", bytes(100));
    expect(await c.get("k1")).toBeUndefined();
    expect(await c.getMany(["k0", "k2", "k3"])).toHaveLength(3);
    expect((await c.getMany(["k0", "k2", "k3"])).every((v) => v !== undefined)).toBe(true);
    expect(c.stats()).toMatchObject({ evictions: 1, entries: 3, bytes: per * 3 });
  });

  it("replacing a key re-counts its bytes; a value bigger than the budget is not kept", async () => {
    const c = new MemoryIndexCache({ maxBytes: 10_000 });
    await c.set("k", bytes(1000));
    await c.set("k", bytes(10));
    expect(c.stats().bytes).toBe(cost("k", 10));
    await c.set("huge", bytes(20_000));
    expect(await c.get("huge")).toBeUndefined();
    expect(c.stats()).toMatchObject({ entries: 1, bytes: cost("k", 10) });
  });

  it("copies a small view of a big buffer so the budget counts what is retained", async () => {
    const c = new MemoryIndexCache({ maxBytes: 1 << 20 });
    const big = new Uint8Array(4 << 20).fill(3);
    await c.set("k", big.subarray(100, 200));
    const got = (await c.get("k"))!;
    expect(got.length).toBe(100);
    expect(got.buffer.byteLength).toBe(100);
    expect(got.every((b) => b === 3)).toBe(true);
  });

  it("expires entries after ttlMs (the default or per set)", async () => {
    const c = new MemoryIndexCache({ maxBytes: 1 << 20, ttlMs: 30 });
    await c.set("short", bytes(1));
    await c.set("long", bytes(1), { ttlMs: 60_000 });
    await new Promise((r) => setTimeout(r, 60));
    expect(await c.get("short")).toBeUndefined();
    expect(await c.get("long")).toBeDefined();
    expect(c.stats()).toMatchObject({ expirations: 1, entries: 1 });
  });

  it("deletePrefix drops that prefix only", async () => {
    const c = new MemoryIndexCache({ maxBytes: 1 << 20 });
    for (const k of ["des1|s3://b/a|tail", "des1|s3://b/a|v|0+10", "des1|s3://b/ab|tail", "other"])
      await c.set(k, bytes(5));
    expect(await c.deletePrefix("des1|s3://b/a|")).toBe(2);
    expect(await c.get("des1|s3://b/ab|tail")).toBeDefined();
    expect(await c.get("other")).toBeDefined();
    expect(c.stats().entries).toBe(2);
    await c.delete("other");
    expect(await c.get("other")).toBeUndefined();
  });

  it("stays within its byte bound under a churn of 10,000 archives", async () => {
    const maxBytes = 8 << 20;
    const c = new MemoryIndexCache({ maxBytes });
    const r = rng(8);
    const live = new Map<string, number>();
    let peak = 0;
    let setCount = 0;
    for (let a = 0; a < 10_000; a++) {
      const src = `des1|s3://bucket/archives/${a}.des`;
      const keys: [string, number][] = [[`${src}|tail`, 1024 + Math.floor(r() * 64 * 1024)]];
      const pages = Math.floor(r() * 4);
      for (let p = 0; p < pages; p++)
        keys.push([`${src}|"etag${a}"|${p * 65536}+${4096}`, 4096 + Math.floor(r() * 28 * 1024)]);
      for (const [k, n] of keys) {
        await c.set(k, new Uint8Array(n));
        setCount++;
        live.set(k, n);
        peak = Math.max(peak, c.stats().bytes);
      }
      // Re-read an older archive now and then: hits keep it alive.
      if (a % 10 === 0) await c.get(`des1|s3://bucket/archives/${Math.floor(a / 2)}.des|tail`);
    }
    const s = c.stats();
    expect(peak).toBeLessThanOrEqual(maxBytes);
    expect(s.bytes).toBeLessThanOrEqual(maxBytes);
    expect(s.sets).toBe(setCount);
    expect(s.evictions).toBe(setCount - s.entries);
    // The accounting matches what is really held.
    let held = 0;
    let entries = 0;
    for (const [k, n] of live) {
      const v = c.getSync(k);
      if (v) {
        expect(v.length).toBe(n);
        held += cost(k, n);
        entries++;
      }
    }
    expect(entries).toBe(s.entries);
    expect(held).toBe(s.bytes);
    // Full enough: within one largest value of the budget.
    expect(s.bytes).toBeGreaterThan(maxBytes - cost("x".repeat(80), 64 * 1024 + 1024));
    // The newest archive is in, the first ones are long gone.
    expect(c.getSync("des1|s3://bucket/archives/9999.des|tail")).toBeDefined();
    expect(c.getSync("des1|s3://bucket/archives/1.des|tail")).toBeUndefined();
  });

  it("refuses a missing or negative budget with a typed error", () => {
    expect(() => new MemoryIndexCache({ maxBytes: -1 })).toThrow(DesInvalidArgumentError);
    expect(() => new MemoryIndexCache({} as { maxBytes: number })).toThrow(DesInvalidArgumentError);
  });
});
