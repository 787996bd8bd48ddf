import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisIndexCache, escapeGlob } from "../src/cache/redis.js";
import { DesInvalidArgumentError } from "../src/errors.js";
import { freePort } from "./helpers/moto.js";
import { startRedis } from "./helpers/redis.js";
import type { TestRedis } from "./helpers/redis.js";

let redis: TestRedis | undefined;
let raw: Redis;
const caches: RedisIndexCache[] = [];
// Unique per run, so an external REDIS_URL server is shared safely.
const run = `t${process.pid}-${Date.now()}:`;

function cache(opts: Partial<ConstructorParameters<typeof RedisIndexCache>[0]> = {}): RedisIndexCache {
  const c = new RedisIndexCache({ url: redis!.url, keyPrefix: run, timeoutMs: 500, ...opts });
  caches.push(c);
  return c;
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  raw.on("error", () => undefined);
});

afterAll(async () => {
  for (const c of caches) await c.close();
  raw?.disconnect();
  await redis?.stop();
});

describe("RedisIndexCache", () => {
  it("round-trips every byte value; getMany is one pipeline", async () => {
    const c = cache();
    const v = Uint8Array.from({ length: 256 * 4 }, (_, i) => i & 255);
    await c.set("des1|s3://b/k|tail", v);
    const got = await c.get("des1|s3://b/k|tail");
    expect(got).toEqual(v);
    expect(Buffer.from((await raw.getBuffer(`${run}des1|s3://b/k|tail`)) ?? [])).toEqual(Buffer.from(v));
    await c.set("des1|s3://b/k|e|0+1", Uint8Array.of(0));
    const before = c.stats().roundTrips;
    const many = await c.getMany(["des1|s3://b/k|tail", "nope", "des1|s3://b/k|e|0+1"]);
    expect(many).toEqual([v, undefined, Uint8Array.of(0)]);
    expect(c.stats().roundTrips - before).toBe(1);
    expect(c.stats()).toMatchObject({ hits: 3, misses: 1, sets: 2, errors: 0 });
  });

  it("sets a TTL with PX and the entry expires", async () => {
    const c = cache({ ttlMs: 150 });
    await c.set("ttl", Uint8Array.of(1));
    await c.set("ttl-long", Uint8Array.of(2), { ttlMs: 60_000 });
    const pttl = await raw.pttl(`${run}ttl`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(150);
    expect(await raw.pttl(`${run}ttl-long`)).toBeGreaterThan(59_000);
    await new Promise((r) => setTimeout(r, 250));
    expect(await c.get("ttl")).toBeUndefined();
    expect(await c.get("ttl-long")).toEqual(Uint8Array.of(2));
  });

  it("deletePrefix unlinks under its own prefix only, in SCAN batches, glob characters taken literally", async () => {
    const c = cache({ keyPrefix: `${run}p:`, scanCount: 100 });
    const src = "des1|s3://b/we*ird[1]?.des|";
    for (let i = 0; i < 1200; i++) await raw.set(`${run}p:${src}e|${i}+1`, "x");
    await raw.set(`${run}p:${src}tail`, "x");
    const untouched = [
      `${run}p:des1|s3://b/weXird1X.des|tail`, // would match if * [ ] ? were globs
      `${run}p:des1|s3://b/we*ird[1]?.des2|tail`,
      `${run}q:${src}tail`, // another cache's prefix
      `${src}tail`, // no prefix
    ];
    for (const k of untouched) await raw.set(k, "y");
    expect(await c.deletePrefix(src)).toBe(1201);
    for (const k of untouched) expect(await raw.get(k)).toBe("y");
    expect(await raw.exists(`${run}p:${src}tail`)).toBe(0);
    expect(escapeGlob("a*b?c[d]e\\f")).toBe("a\\*b\\?c\\[d\\]e\\\\f");
  });

  it("a value of the wrong type is a miss counted as an error, never a throw", async () => {
    const c = cache();
    await raw.rpush(`${run}list`, "a", "b");
    expect(await c.get("list")).toBeUndefined();
    expect(await c.getMany(["list"])).toEqual([undefined]);
    expect(c.stats().errors).toBe(2);
  });

  it("Redis killed mid-run: calls are misses at once, no unhandled errors, no reconnect storm, and it is used again when back", async () => {
    if (!redis!.owned) return; // an external REDIS_URL is not ours to kill
    const c = cache({ timeoutMs: 300 });
    await c.set("k", Uint8Array.of(42));
    expect(await c.get("k")).toEqual(Uint8Array.of(42));
    let reconnects = 0;
    c.client.on("reconnecting", () => reconnects++);
    await redis!.kill();
    const t0 = Date.now();
    expect(await c.get("k")).toBeUndefined();
    expect(await c.getMany(["k", "k2"])).toEqual([undefined, undefined]);
    await c.set("k3", Uint8Array.of(3));
    expect(await c.deletePrefix("k")).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(c.stats().errors).toBeGreaterThanOrEqual(4);
    await new Promise((r) => setTimeout(r, 1500));
    expect(reconnects).toBeLessThanOrEqual(8); // capped backoff, not a storm
    await redis!.restart(); // empty: no persistence
    expect(
      await until(async () => {
        await c.set("back", Uint8Array.of(9));
        return (await c.get("back"))?.[0] === 9;
      }, 6000),
    ).toBe(true);
    await raw.ping().catch(() => undefined);
  });

  it("a stalled Redis (SIGSTOP) times out as a miss within timeoutMs, rests, then is used again", async () => {
    if (!redis!.owned || redis!.pid === undefined) return;
    const c = cache({ timeoutMs: 150, retryAfterMs: 300 });
    await c.set("s", Uint8Array.of(5));
    expect(await c.get("s")).toEqual(Uint8Array.of(5));
    process.kill(redis!.pid, "SIGSTOP");
    try {
      const t0 = Date.now();
      expect(await c.get("s")).toBeUndefined();
      expect(Date.now() - t0).toBeLessThan(600);
      expect(c.stats().timeouts).toBe(1);
      // Resting: answered without asking Redis.
      const skipped = c.stats().skipped;
      expect(await c.get("s")).toBeUndefined();
      expect(c.stats().skipped).toBe(skipped + 1);
    } finally {
      process.kill(redis!.pid, "SIGCONT");
    }
    expect(await until(async () => (await c.get("s"))?.[0] === 5, 3000)).toBe(true);
  });

  it("a Redis that is not there: every call is a miss within the timeout", async () => {
    const port = await freePort();
    const c = new RedisIndexCache({ url: `redis://127.0.0.1:${port}`, timeoutMs: 200 });
    caches.push(c);
    const t0 = Date.now();
    expect(await c.get("k")).toBeUndefined();
    await c.set("k", Uint8Array.of(1));
    expect(await c.getMany(["a", "b"])).toEqual([undefined, undefined]);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(c.stats().errors).toBeGreaterThanOrEqual(3);
  });

  it("a client you pass is used as is and not closed", async () => {
    const client = new Redis(redis!.url);
    const c = new RedisIndexCache({ client, keyPrefix: run });
    await c.set("own", Uint8Array.of(1));
    expect(await c.get("own")).toEqual(Uint8Array.of(1));
    await c.close();
    expect(client.status).toBe("ready");
    client.disconnect();
    expect(() => new RedisIndexCache({} as { url: string })).toThrow(DesInvalidArgumentError);
  });
});
