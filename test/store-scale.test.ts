import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DailyShardedDesStore, parseName, shardFromName } from "../src/index.js";
import { rngFor } from "./helpers/store-rng.js";
import { sameBytes } from "./helpers/store-data.js";
import { tempDir } from "./helpers/tmp.js";

/** Small bodies (0..255 bytes), a function of k. */
function body(k: number): Uint8Array {
  const len = (k * 131) % 256;
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (k + i * 31) & 0xff;
  return b;
}

describe("store at scale", () => {
  it("100,000 puts, then random gets across 256 shards, every byte checked (journal and sealed parts)", async () => {
    const dir = tempDir();
    const store = await DailyShardedDesStore.open({ location: dir, nodeId: 4, shardBits: 8, maxEntries: 60_000 });
    const N = 100_000;
    const names = new Array<string>(N);
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < N) {
          const k = next++;
          names[k] = await store.put(body(k));
        }
      }),
    );
    expect(new Set(names).size).toBe(N);
    const shards = new Set(names.map((n) => shardFromName(n, 8)));
    expect(shards.size).toBe(256);
    // group commit: far fewer fsyncs than puts
    expect(store.stats.commits).toBeLessThan(N / 8);

    const rnd = rngFor(7);
    const randomGets = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const k = Math.floor(rnd() * N);
        if (!sameBytes(await store.get(names[k]!), body(k))) throw new Error(`wrong bytes for #${k}`);
      }
    };
    await randomGets(5000); // some sealed, most still in the journal
    await store.flush();
    const day = parseName(names[0]!).day;
    expect(fs.readdirSync(path.join(dir, day)).length).toBeGreaterThanOrEqual(256);
    for (let at = 0; at < N; at += 20_000) {
      const chunk = names.slice(at, at + 20_000);
      const got = await store.getMany(chunk);
      for (let i = 0; i < chunk.length; i++)
        if (!sameBytes(got.get(chunk[i]!), body(at + i))) throw new Error(`wrong bytes for #${at + i}`);
    }
    await randomGets(5000); // all sealed
    expect(store.stats.listings).toBeLessThanOrEqual(256 * 2);
    await store.close();
  });
});
