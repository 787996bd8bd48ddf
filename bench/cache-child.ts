/**
 * One "new process" of bench/cache.ts: opens the archive through an index
 * cache that another process filled (a folder, or Redis), reads one entry,
 * and prints one line of JSON on stdout:
 *
 *   node --import tsx bench/cache-child.ts <none|fs|redis> <endpoint> <bucket> <key> <name> <dir|redisUrl> [keyPrefix]
 */
import { S3Client } from "@aws-sdk/client-s3";
import { FsIndexCache } from "../src/cache/fs.js";
import { RedisIndexCache } from "../src/cache/redis.js";
import type { IndexCache } from "../src/io/cache.js";
import { S3DesReader } from "../src/s3/index.js";

export interface CacheChildResult {
  openMs: number;
  getMs: number;
  bytes: number;
  readerRequests: number;
  readerBytes: number;
  /** Redis round trips for the open and the get (redis mode). */
  redisRoundTrips: number;
}

const [mode, endpoint, bucket, key, name, where, prefix] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string | undefined,
];
const client = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});
const cache: IndexCache | undefined =
  mode === "redis"
    ? new RedisIndexCache({ url: where, keyPrefix: prefix ?? "des:", timeoutMs: 2000 })
    : mode === "fs"
      ? new FsIndexCache({ dir: where, maxBytes: 1 << 30 })
      : undefined;
if (cache instanceof RedisIndexCache) {
  // Connect before the clock starts: a Lambda connects at init, not per request.
  await cache.get("__connect__");
}
const before = cache instanceof RedisIndexCache ? cache.stats().roundTrips : 0;
const t0 = performance.now();
const reader = await S3DesReader.open({ client, bucket, key }, cache ? { cache } : {});
const t1 = performance.now();
const got = await reader.get(name);
const t2 = performance.now();
const out: CacheChildResult = {
  openMs: t1 - t0,
  getMs: t2 - t1,
  bytes: got.length,
  readerRequests: reader.ioStats.requests,
  readerBytes: reader.ioStats.bytes,
  redisRoundTrips: cache instanceof RedisIndexCache ? cache.stats().roundTrips - before : 0,
};
await reader.close();
await cache?.close?.();
client.destroy();
process.stdout.write(JSON.stringify(out) + "\n");
