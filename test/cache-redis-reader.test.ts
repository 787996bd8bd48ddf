import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryIndexCache } from "../src/cache/memory.js";
import { RedisIndexCache } from "../src/cache/redis.js";
import { TieredIndexCache } from "../src/cache/tiered.js";
import { S3DesReader } from "../src/s3/index.js";
import { MemorySink } from "../src/sinks/memory.js";
import { DesWriter } from "../src/write/writer.js";
import { bodyOf } from "./helpers/data.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";
import { startRedis } from "./helpers/redis.js";
import type { TestRedis } from "./helpers/redis.js";
import { tempDir } from "./helpers/tmp.js";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUCKET = `des-redis-${Date.now().toString(36)}-${process.pid}`;
const KEY = "shared/index.des";
const N = 3000;
const name = (i: number): string => `f/${String(i).padStart(5, "0")}`;
const size = (i: number): number => 100 + ((i * 131) % 900);
const work = tempDir("des-redis-reader-");

let moto: Moto | undefined;
let redis: TestRedis | undefined;
let raw: Redis;
let direct: S3Client;

beforeAll(async () => {
  moto = await startMoto();
  redis = await startRedis();
  raw = new Redis(redis.url);
  raw.on("error", () => undefined); // the kill test takes the server away under it
  direct = new S3Client(s3Config(moto.endpoint));
  await ensureBucket(direct, BUCKET);
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(name(i), bodyOf(i, size(i)));
  });
  await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: sink.bytes() }));
}, 120_000);

afterAll(async () => {
  raw?.disconnect();
  direct?.destroy();
  await redis?.stop();
  await moto?.stop();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== "0");
  return out.sort();
}

describe("RedisIndexCache under the reader", () => {
  it("two processes share one Redis index: the second opens with zero S3 requests", async () => {
    const prefix = `share-${process.pid}:`;
    const child = path.join(work, "reader-child.mts");
    fs.writeFileSync(
      child,
      `import { RedisIndexCache } from ${JSON.stringify(path.join(ROOT, "src/cache/redis.ts"))};
import { S3DesReader } from ${JSON.stringify(path.join(ROOT, "src/s3/index.ts"))};
import { countingClient } from ${JSON.stringify(path.join(ROOT, "test/helpers/moto.ts"))};
const [endpoint, bucket, key, url, prefix, entry] = process.argv.slice(2);
const { client, counter } = countingClient(endpoint);
const cache = new RedisIndexCache({ url, keyPrefix: prefix, timeoutMs: 2000 });
const reader = await S3DesReader.open({ client, bucket, key }, { cache });
const openRequests = counter.total;
const bytes = await reader.get(entry);
const out = { openRequests, getRequests: counter.total - openRequests, body: Buffer.from(bytes).toString("base64"), roundTrips: cache.stats().roundTrips };
await reader.close();
await cache.close();
client.destroy();
process.stdout.write(JSON.stringify(out));
`,
    );
    const go = async (): Promise<{ openRequests: number; getRequests: number; body: string; roundTrips: number }> => {
      const { stdout } = await run(
        process.execPath,
        ["--import", "tsx", child, moto!.endpoint, BUCKET, KEY, redis!.url, prefix, name(77)],
        { cwd: ROOT },
      );
      return JSON.parse(stdout) as { openRequests: number; getRequests: number; body: string; roundTrips: number };
    };
    const first = await go();
    expect(first.openRequests).toBeGreaterThanOrEqual(1);
    expect((await keysUnder(prefix)).length).toBeGreaterThanOrEqual(1);
    const second = await go();
    expect(second.openRequests).toBe(0);
    expect(second.getRequests).toBe(1);
    expect(second.body).toBe(Buffer.from(bodyOf(77, size(77))).toString("base64"));
    expect(first.body).toBe(second.body);
  }, 60_000);

  it("a corrupt or foreign value in Redis is a miss: the reader goes to S3, reads right, and replaces it", async () => {
    const prefix = `corrupt-${process.pid}:`;
    const fill = new RedisIndexCache({ url: redis!.url, keyPrefix: prefix });
    const { client, counter } = countingClient(moto!.endpoint);
    try {
      const r1 = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { cache: fill });
      await r1.get(name(5));
      await r1.close();
      const keys = await keysUnder(prefix);
      expect(keys.length).toBeGreaterThanOrEqual(1);
      // Flip one byte in the middle of every value; make one value not ours at all.
      for (const k of keys) {
        const v = (await raw.getBuffer(k))!;
        v[v.length >> 1]! ^= 0xff;
        await raw.set(k, v);
      }
      const corrupted = new Map<string, Buffer>();
      for (const k of keys) corrupted.set(k, (await raw.getBuffer(k))!);
      await raw.set(keys[0]!, "not a des-pack value");
      counter.reset();
      const cache = new RedisIndexCache({ url: redis!.url, keyPrefix: prefix });
      const r2 = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { cache });
      expect(Buffer.from(await r2.get(name(5))).equals(Buffer.from(bodyOf(5, size(5))))).toBe(true);
      expect(counter.total).toBeGreaterThanOrEqual(2); // the tail again, then the data
      await r2.close();
      // Nothing corrupt is left: each key was deleted or rewritten with good bytes.
      for (const k of keys) {
        const now = await raw.getBuffer(k);
        if (now) expect(now.equals(corrupted.get(k)!)).toBe(false);
      }
      await cache.close();
    } finally {
      await fill.close();
      client.destroy();
    }
  }, 60_000);

  it("Redis killed mid-run: reads stay correct (from S3), and the memory tier above keeps serving", async () => {
    if (!redis!.owned) return;
    const prefix = `kill-${process.pid}:`;
    const redisTier = new RedisIndexCache({ url: redis!.url, keyPrefix: prefix, timeoutMs: 200 });
    const { client, counter } = countingClient(moto!.endpoint);
    try {
      const r1 = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { cache: redisTier });
      await r1.get(name(1));
      await r1.close();
      await redis!.kill();
      // A new reader over the dead Redis: it opens from S3 and every read is right.
      counter.reset();
      const memory = new MemoryIndexCache({ maxBytes: 16 << 20 });
      const tiered = new TieredIndexCache([memory, redisTier]);
      const r2 = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { cache: tiered });
      for (const i of [1, 2, 1500, 2999])
        expect(Buffer.from(await r2.get(name(i))).equals(Buffer.from(bodyOf(i, size(i))))).toBe(true);
      await r2.close();
      expect(counter.total).toBeGreaterThanOrEqual(1);
      expect(redisTier.stats().errors).toBeGreaterThan(0);
      // The memory tier got the index on the way: the next open is free even with Redis down.
      counter.reset();
      const r3 = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { cache: tiered });
      expect(counter.total).toBe(0);
      await r3.close();
    } finally {
      await redis!.restart();
      await redisTier.close();
      client.destroy();
    }
  }, 60_000);
});
