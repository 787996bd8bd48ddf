import { beforeAll, describe, expect, it } from "vitest";
import { loadHasher } from "../src/format/hash.js";
import { DesChangedError, DesReader, DesWriter, MemorySink } from "../src/index.js";
import type { RangeSource, ReadHints } from "../src/index.js";
import type { IndexCache, IndexCacheStats } from "../src/io/cache.js";
import { FRAME_RANGE, FRAME_TAIL, decodeTail, encodeTail, frame, unframe } from "../src/read/cache-frame.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A Map-based IndexCache that counts every call. */
class MapCache implements IndexCache {
  readonly map = new Map<string, Uint8Array>();
  calls = { get: 0, getMany: 0, set: 0, delete: 0, deletePrefix: 0 };
  private hits = 0;
  private misses = 0;
  async get(key: string): Promise<Uint8Array | undefined> {
    this.calls.get++;
    const v = this.map.get(key);
    if (v) this.hits++;
    else this.misses++;
    return v;
  }
  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.calls.getMany++;
    return keys.map((k) => {
      const v = this.map.get(k);
      if (v) this.hits++;
      else this.misses++;
      return v;
    });
  }
  async set(key: string, bytes: Uint8Array): Promise<void> {
    this.calls.set++;
    this.map.set(key, bytes);
  }
  async delete(key: string): Promise<void> {
    this.calls.delete++;
    this.map.delete(key);
  }
  async deletePrefix(prefix: string): Promise<number> {
    this.calls.deletePrefix++;
    let n = 0;
    for (const k of [...this.map.keys()]) if (k.startsWith(prefix)) n += this.map.delete(k) ? 1 : 0;
    return n;
  }
  stats(): IndexCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      sets: this.calls.set,
      evictions: 0,
      errors: 0,
      bytes: 0,
      entries: this.map.size,
    };
  }
  keys(): string[] {
    return [...this.map.keys()].sort();
  }
}

/**
 * An object store in memory with versions, shared by several sources (the
 * "processes"): reads pinned to a version fail like S3's 412 once it is replaced.
 */
class Store {
  bytes: Uint8Array;
  version = 1;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  replace(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.version++;
  }
}

class VersionedSource implements RangeSource {
  readonly hints: ReadHints = { maxGap: 0, maxSpan: 1 << 20, concurrency: 4 };
  tails = 0;
  reads = 0;
  pinnedReads: (string | undefined)[] = [];
  constructor(
    private readonly store: Store,
    readonly key = "mem://bucket/archive.des",
    private readonly delayMs = 0,
  ) {}
  get size(): number | undefined {
    return undefined;
  }
  private async pause(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
  }
  async readTail(length: number): Promise<{ bytes: Uint8Array; size: number; version: string }> {
    this.tails++;
    await this.pause();
    const b = this.store.bytes;
    const n = Math.min(length, b.length);
    return { bytes: b.slice(b.length - n), size: b.length, version: `v${this.store.version}` };
  }
  async read(offset: number, length: number, _signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    this.reads++;
    this.pinnedReads.push(version);
    await this.pause();
    if (version !== undefined && version !== `v${this.store.version}`)
      throw new DesChangedError("precondition failed (412)");
    return this.store.bytes.slice(offset, offset + length);
  }
  get requests(): number {
    return this.tails + this.reads;
  }
}

const nameOf = (i: number): string => `e${String(i).padStart(6, "0")}`;

/** A v2 archive with many index pages (about 40 at 20,000 entries). */
async function archive(n: number, tag: string): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < n; i++) await w.add(nameOf(i), enc(`${tag} ${i}`), { meta: { i } });
  });
  return sink.bytes();
}

const N = 20_000;

describe("framing of cached values", () => {
  beforeAll(loadHasher);
  it("round-trips and refuses a flipped byte, a foreign format byte and a short value", () => {
    const t = { bytes: new Uint8Array([1, 2, 3]), size: 1000, version: '"etag"' };
    const v = encodeTail(t);
    expect(v[0]).toBe(FRAME_TAIL);
    expect(v.length).toBe(1 + 8 + 4 + 6 + 3 + 8);
    expect(decodeTail(v)).toEqual(t);
    for (let i = 0; i < v.length; i++) {
      const bad = new Uint8Array(v);
      bad[i] = bad[i]! ^ 0x40;
      expect(decodeTail(bad), `byte ${i}`).toBeUndefined();
    }
    expect(unframe(FRAME_RANGE, v)).toBeUndefined();
    expect(unframe(FRAME_TAIL, v.subarray(0, 8))).toBeUndefined();
    expect(unframe(FRAME_RANGE, frame(FRAME_RANGE, new Uint8Array([7])))).toEqual(new Uint8Array([7]));
  });
});

describe("a reader with an IndexCache", () => {
  it("stores the tail at open; a warm open makes zero source requests and a get exactly one", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    const cold = await DesReader.open(new VersionedSource(store), { cache });
    expect(dec(await cold.get(nameOf(7)))).toBe("a 7");
    await cold.close();
    const keys = cache.keys();
    expect(keys).toContain("des1|mem://bucket/archive.des|tail");
    // One page was fetched from the source for the lookup: it is now in the cache under its version and range.
    expect(keys.filter((k) => /^des1\|mem:\/\/bucket\/archive\.des\|v1\|\d+\+\d+$/.test(k))).toHaveLength(1);

    const src = new VersionedSource(store);
    const warm = await DesReader.open(src, { cache });
    expect(src.requests).toBe(0);
    expect(warm.ioStats.requests).toBe(0);
    expect(dec(await warm.get(nameOf(7)))).toBe("a 7");
    // The page came from the cache; the data read is the only request, pinned to the cached version.
    expect(src.requests).toBe(1);
    expect(src.pinnedReads).toEqual(["v1"]);
    await warm.close();
  });

  it("goes to the cache first for page misses (one getMany for a batch), then the source in one coalesced round", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    const names = Array.from({ length: 300 }, (_, i) => nameOf(i * 61));
    const first = await DesReader.open(new VersionedSource(store), { cache });
    await first.getMany(names);
    await first.close();
    const pageKeys = cache.keys().filter((k) => !k.endsWith("|tail"));
    expect(pageKeys.length).toBeGreaterThan(20);

    const src = new VersionedSource(store);
    const r = await DesReader.open(src, { cache });
    cache.calls.getMany = 0;
    const got = await r.getMany(names);
    expect([...got.keys()]).toEqual(names);
    expect(dec(got.get(nameOf(61))!)).toBe("a 61");
    expect(cache.calls.getMany).toBe(1);
    // Every page came from the cache: only data reads went to the source.
    expect(src.tails).toBe(0);
    expect(src.pinnedReads.every((v) => v === "v1")).toBe(true);
    await r.close();
  });

  it("deletes a corrupt value and counts it as a miss, never parsing it", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    await (await DesReader.open(new VersionedSource(store), { cache })).close();
    const tailKey = "des1|mem://bucket/archive.des|tail";
    const good = cache.map.get(tailKey)!;
    const bad = new Uint8Array(good);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 1;
    cache.map.set(tailKey, bad);
    const src = new VersionedSource(store);
    cache.calls.delete = 0;
    const r = await DesReader.open(src, { cache });
    expect(src.tails).toBe(1); // the bad value was a miss: the tail came from the source
    expect(cache.calls.delete).toBe(1);
    expect(dec(await r.get(nameOf(3)))).toBe("a 3");
    await r.close();
    expect(cache.map.get(tailKey)).toEqual(good); // stored again, well-formed

    // A foreign value under a page key: deleted, the page read from the source, the lookup correct.
    const pageKey = cache.keys().find((k) => !k.endsWith("|tail"))!;
    cache.map.set(pageKey, enc("not a frame at all"));
    const r2 = await DesReader.open(new VersionedSource(store), { cache });
    expect(await r2.list()).toHaveLength(N);
    await r2.close();
    expect(unframe(FRAME_RANGE, cache.map.get(pageKey)!)).toBeDefined();
  });

  it("a replaced archive: the pinned read fails, the cache of that archive is purged, the reader reopens and retries once", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    const other = new MapCache();
    await (await DesReader.open(new VersionedSource(store), { cache })).close();
    // Another archive's keys in the same cache must survive the purge.
    cache.map.set("des1|mem://bucket/other.des|tail", new Uint8Array([1]));
    store.replace(await archive(N, "b"));
    const src = new VersionedSource(store);
    const r = await DesReader.open(src, { cache });
    expect(src.requests).toBe(0); // warm, and stale: nothing has told us yet
    expect(dec(await r.get(nameOf(5)))).toBe("b 5");
    expect(cache.calls.deletePrefix).toBe(1);
    expect(src.tails).toBe(1);
    await r.close();
    expect(cache.map.has("des1|mem://bucket/other.des|tail")).toBe(true);
    expect(cache.keys().filter((k) => k.includes("|v1|"))).toEqual([]);
    expect(cache.keys().filter((k) => k.includes("|v2|")).length).toBeGreaterThan(0);
    expect(other.keys()).toEqual([]);
  });

  it("concurrent opens and page misses of one archive share one fetch", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    const sources = Array.from({ length: 5 }, () => new VersionedSource(store, "mem://bucket/archive.des", 20));
    const readers = await Promise.all(sources.map((s) => DesReader.open(s, { cache })));
    expect(sources.reduce((n, s) => n + s.tails, 0)).toBe(1);
    const before = sources.map((s) => s.reads);
    await Promise.all(readers.map((r) => r.has(nameOf(42))));
    const pageReads = sources.reduce((n, s, i) => n + s.reads - before[i]!, 0);
    expect(pageReads).toBe(1);
    for (const r of readers) await r.close();
  });

  it("warm() stores every page; a later open answers list() and stat() with zero source requests; purge() drops the archive", async () => {
    const store = new Store(await archive(N, "a"));
    const cache = new MapCache();
    const r = await DesReader.open(new VersionedSource(store), { cache });
    const report = await r.warm();
    // Every page outside the tail is a key of its own; the tail is one more.
    expect(cache.keys().length).toBe(report.ranges - report.inTail + 1);
    expect(report.ranges).toBeGreaterThan(20);
    const src = new VersionedSource(store);
    const again = await DesReader.open(src, { cache });
    expect(await again.list()).toHaveLength(N);
    expect((await again.stat(nameOf(19_999))).size).toBe(`a ${19_999}`.length);
    expect(src.requests).toBe(0);
    expect(await again.purge()).toBe(report.ranges - report.inTail + 1);
    expect(cache.keys()).toEqual([]);
    await again.close();
    await r.close();
  });

  it("a source without a version token is never cached (its bytes could change unseen)", async () => {
    const store = new Store(await archive(100, "a"));
    const cache = new MapCache();
    const src = new VersionedSource(store, "mem://x");
    src.readTail = async (length: number) => {
      const b = store.bytes;
      const n = Math.min(length, b.length);
      return { bytes: b.slice(b.length - n), size: b.length } as { bytes: Uint8Array; size: number; version: string };
    };
    const r = await DesReader.open(src, { cache });
    expect(dec(await r.get(nameOf(1)))).toBe("a 1");
    await r.close();
    expect(cache.keys()).toEqual([]);
  });
});

describe("a local file under a cache", () => {
  it("a warm open makes no read; a file replaced by rename is detected by its version token, purged and reopened", async () => {
    const { tempDir } = await import("./helpers/tmp.js");
    const fs = await import("node:fs");
    const path = await import("node:path");
    const dir = tempDir("des-cache-file-");
    const file = path.join(dir, "a.des");
    fs.writeFileSync(file, await archive(N, "a"));
    const cache = new MapCache();
    const first = await DesReader.open(file, { cache });
    expect(dec(await first.get(nameOf(9)))).toBe("a 9");
    await first.close();
    const tailKey = [...cache.map.keys()].find((k) => k.endsWith("|tail"))!;
    expect(tailKey).toBe(`des1|${path.resolve(file)}|tail`);

    const warm = await DesReader.open(file, { cache });
    expect(warm.ioStats.requests).toBe(0);
    expect(dec(await warm.get(nameOf(9)))).toBe("a 9");
    expect(warm.ioStats.requests).toBe(1);
    await warm.close();

    // Replaced the way writers do it (temporary file, then rename): a new inode, so a new version token.
    fs.writeFileSync(`${file}.tmp`, await archive(N, "b"));
    fs.renameSync(`${file}.tmp`, file);
    // The warm open stats the path: the cached tail names the old token, so it is dropped and the new tail read.
    const after = await DesReader.open(file, { cache });
    expect(after.ioStats.requests).toBe(1);
    expect(cache.calls.deletePrefix).toBe(1);
    expect(dec(await after.get(nameOf(9)))).toBe("b 9");
    expect(await after.has(nameOf(9))).toBe(true);
    expect(cache.calls.deletePrefix).toBe(1);
    await after.close();
  });
});
