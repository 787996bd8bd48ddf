/**
 * The daily store: durable puts per second (64 concurrent callers, every put
 * resolved only after its fsync) of 1 KiB and 4 KiB blobs, and warm gets per
 * second, against a naive service in the same run that writes one file per
 * blob with `fs.writeFile` and an fsync (and reads it back with readFile).
 */
import fs from "node:fs";
import path from "node:path";
import { DailyShardedDesStore } from "../src/index.js";
import type { BenchRow, Benchmark } from "./lib.js";
import { rng } from "./lib.js";
import { DATA_DIR, median } from "./tree.js";

const CALLERS = 64;
const ROUNDS = 3;

async function pool(count: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < count) await task(next++);
    }),
  );
  return count / ((performance.now() - t0) / 1000);
}

function blob(size: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) b[i] = Math.floor(r() * 256);
  return b;
}

/** One file per blob, written and fsynced, the way a naive service stores them. */
async function naivePut(dir: string, name: string, data: Uint8Array): Promise<void> {
  const fh = await fs.promises.open(path.join(dir, name), "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const benchmark: Benchmark = {
  name: "store",
  async run() {
    const root = path.join(DATA_DIR, "store");
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
    const rows: BenchRow[] = [];
    const notes: string[] = [];
    for (const size of [1024, 4096]) {
      const bodies = Array.from({ length: 64 }, (_, i) => blob(size, i + size));
      const store = await DailyShardedDesStore.open({
        location: path.join(root, `store-${size}`),
        nodeId: 1,
        shardBits: 8,
      });
      const n = size === 1024 ? 100_000 : 50_000;
      const names = new Array<string>(n);
      // The disk's fsync latency drifts by several times within minutes: the baseline and the store take
      // turns (ROUNDS of each, alternating), and the ratio is of their medians.
      const naiveN = 4000;
      const naiveRates: number[] = [];
      const putRates: number[] = [];
      const per = Math.ceil(n / ROUNDS);
      for (let round = 0; round < ROUNDS; round++) {
        const naiveDir = path.join(root, `naive-${size}-${round}`);
        fs.mkdirSync(naiveDir);
        naiveRates.push(await pool(naiveN, (i) => naivePut(naiveDir, `b${i}`, bodies[i % 64]!)));
        const from = round * per;
        const count = Math.min(per, n - from);
        putRates.push(
          await pool(count, async (i) => {
            names[from + i] = await store.put(bodies[(from + i) % 64]!);
          }),
        );
        // A seal the round started runs on past its end: it must not be charged to the next baseline round.
        await (store as unknown as { sealChain: Promise<void> }).sealChain;
      }
      const naive = median(naiveRates);
      const puts = median(putRates);
      const naiveDir = path.join(root, `naive-${size}-0`);
      const commits = store.stats.commits;
      const label = `${size / 1024} KiB`;
      rows.push({
        metric: `durable puts/s, ${label}, ${CALLERS} callers`,
        value: puts,
        unit: "puts/s",
        baseline: "writeFile + fsync per blob",
        baselineValue: naive,
        ratio: puts / naive,
        target: size === 1024 ? ">= 20,000/s and >= 10x baseline" : ">= 10x baseline",
        pass: size === 1024 ? puts >= 20_000 && puts / naive >= 10 : puts / naive >= 10,
      });
      notes.push(
        `${label}: ${n.toLocaleString("en-US")} puts in ${commits.toLocaleString("en-US")} group commits (${(n / commits).toFixed(1)} puts per fsync); puts/s by round ${putRates.map((r) => r.toFixed(0)).join(", ")}; baseline by round ${naiveRates.map((r) => r.toFixed(0)).join(", ")}.`,
      );

      if (size === 1024) {
        await store.flush(); // every name now in a sealed part
        const r = rng(9);
        const order = Array.from({ length: 200_000 }, () => names[Math.floor(r() * n)]!);
        await pool(50_000, async (i) => void (await store.get(order[i]!))); // warm the part readers and page cache
        const gets = await pool(order.length, async (i) => void (await store.get(order[i]!)));
        const naiveGets = await pool(
          naiveN * 10,
          async (i) => void (await fs.promises.readFile(path.join(naiveDir, `b${(i * 7919) % naiveN}`))),
        );
        rows.push({
          metric: `warm gets/s, ${label}, sealed parts, ${CALLERS} callers`,
          value: gets,
          unit: "gets/s",
          baseline: "readFile per blob (warm)",
          baselineValue: naiveGets,
          ratio: gets / naiveGets,
          target: ">= 50,000/s",
          pass: gets >= 50_000,
        });
        const batch = 1000;
        const t0 = performance.now();
        let got = 0;
        for (let at = 0; at < 100_000; at += batch) got += (await store.getMany(order.slice(at, at + batch))).size;
        const many = got / ((performance.now() - t0) / 1000);
        rows.push({ metric: `getMany, batches of ${batch}, sealed parts`, value: many, unit: "blobs/s" });
      }
      await store.close();
    }
    fs.rmSync(root, { recursive: true, force: true });
    return {
      name: "store",
      workload: `DailyShardedDesStore on a local folder, 256 shards, ${CALLERS} concurrent callers; puts resolve after their group's fdatasync. Baseline: one file per blob, writeFile + fsync (4,000 blobs per round), in the same run; ${ROUNDS} rounds of each, taking turns, medians.`,
      rows,
      notes,
    };
  },
};
