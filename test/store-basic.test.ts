import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DailyShardedDesStore,
  DesLockedError,
  DesNotFoundError,
  DesReader,
  DesWriter,
  SnowflakeNameGenerator,
  parseName,
  shardFromName,
} from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const DAY_MS = Date.UTC(2025, 0, 15, 10, 0, 0);

function blob(i: number, len = 100 + (i % 300)): Uint8Array {
  const b = new Uint8Array(len);
  let x = (i * 2654435761) >>> 0;
  for (let k = 0; k < len; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[k] = x >>> 24;
  }
  return b;
}

describe("DailyShardedDesStore on a folder", () => {
  it("puts, reads its writes, seals into <day>/<shard>.n<NN>-<first>-<last>.des parts, and reads them after a restart", async () => {
    const dir = tempDir();
    let now = DAY_MS;
    const store = await DailyShardedDesStore.open({ location: dir, nodeId: 5, shardBits: 4, clock: () => now });
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 0) now++;
      names.push(await store.put(blob(i), i % 3 === 0 ? { meta: { i, tag: "x" } } : {}));
    }
    expect(new Set(names).size).toBe(300);
    for (const [i, n] of names.entries()) {
      expect(parseName(n)).toMatchObject({ prefix: "DES", day: "2025-01-15", nodeId: 5 });
      expect(await store.get(n)).toEqual(blob(i));
      expect(await store.getMeta(n)).toEqual(i % 3 === 0 ? { i, tag: "x" } : undefined);
    }
    expect(await store.has(names[7]!)).toBe(true);
    expect(await store.has("DES_20250115_(000000000000_00)")).toBe(false);
    expect(await store.has("nonsense")).toBe(false);
    await expect(store.get("DES_20250115_(000000000000_00)")).rejects.toBeInstanceOf(DesNotFoundError);
    await store.flush();
    const files = fs.readdirSync(path.join(dir, "2025-01-15")).sort();
    expect(files.length).toBe(16);
    for (const f of files) expect(f).toMatch(/^[0-9a-f]\.n05-[0-9A-F]{12}-[0-9A-F]{12}\.des$/);
    // every part holds exactly the names of its shard
    let total = 0;
    for (const f of files) {
      const r = await DesReader.open(path.join(dir, "2025-01-15", f));
      const inPart = await r.list();
      total += inPart.length;
      for (const n of inPart) expect(shardFromName(n, 4)).toBe(parseInt(f[0]!, 16));
      await r.close();
    }
    expect(total).toBe(300);
    const got = await store.getMany(names);
    for (const [i, n] of names.entries()) expect(got.get(n)).toEqual(blob(i));
    expect(await store.list("2025-01-15")).toEqual([...names].sort());
    await store.close();

    const again = await DailyShardedDesStore.open({ location: dir, nodeId: 5, shardBits: 4, clock: () => now - 1000 });
    for (const [i, n] of names.entries()) expect(await again.get(n)).toEqual(blob(i));
    // at most one listing per day and shard
    expect(again.stats.listings).toBeLessThanOrEqual(16);
    // a clock that went back after the restart does not mint an old name again
    const n2 = await again.put(blob(1000));
    expect(names).not.toContain(n2);
    expect(parseName(n2).f).toBeGreaterThan(parseName(names[names.length - 1]!).f);
    await again.close();
  });

  it("a second store with the same node id on one folder fails with DesLockedError", async () => {
    const dir = tempDir();
    const a = await DailyShardedDesStore.open({ location: dir, nodeId: 1 });
    await expect(DailyShardedDesStore.open({ location: dir, nodeId: 1 })).rejects.toBeInstanceOf(DesLockedError);
    const b = await DailyShardedDesStore.open({ location: dir, nodeId: 2 });
    await b.close();
    await a.close();
    const c = await DailyShardedDesStore.open({ location: dir, nodeId: 1 });
    await c.close();
  });

  it("reads day-and-shard parts in the Python store's layout, v1 archives included (<day>/<shard>.des)", async () => {
    const dir = tempDir();
    const gen = new SnowflakeNameGenerator({ nodeId: 0, wrapBits: 32, clock: () => DAY_MS });
    const byShard = new Map<number, string[]>();
    for (let i = 0; i < 60; i++) {
      const n = await gen.next();
      const sh = shardFromName(n, 2);
      byShard.set(sh, [...(byShard.get(sh) ?? []), n]);
    }
    fs.mkdirSync(path.join(dir, "2025-01-15"));
    const bodies = new Map<string, Uint8Array>();
    for (const [sh, names] of byShard) {
      await DesWriter.write(path.join(dir, "2025-01-15", `${sh}.des`), { format: 1 }, async (w) => {
        for (const n of names) {
          const b = blob(names.indexOf(n) + sh * 100);
          bodies.set(n, b);
          await w.add(n, b, { meta: { src: "python" } });
        }
      });
    }
    const store = await DailyShardedDesStore.open({ location: dir, nodeId: 1, shardBits: 2 });
    for (const [n, b] of bodies) expect(Buffer.from(await store.get(n)).equals(Buffer.from(b))).toBe(true);
    expect(await store.getMeta([...bodies.keys()][0]!)).toMatchObject({ src: "python" });
    expect((await store.list("2025-01-15")).length).toBe(60);
    expect(store.stats.listings).toBeLessThanOrEqual(4);
    await store.close();
  });
});
