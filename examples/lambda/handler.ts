/**
 * An AWS Lambda handler that serves the entries of one DES archive on S3.
 *
 * - The S3 client, the index cache and the reader live at module scope, so a
 *   warm invocation reuses them: it opens nothing and pays one S3 GET per
 *   entry read (the data; index pages come from the cache).
 * - The reader is opened lazily, on the first invocation, through a tiered
 *   cache: memory, then `/tmp` (which survives a new process in the same
 *   sandbox), then Redis when REDIS_URL is set (shared by the whole fleet).
 *   A new process with a warm `/tmp` or Redis opens with zero S3 requests.
 * - ioredis is loaded only when REDIS_URL is set (a dynamic import: bundled
 *   as a separate chunk that a memory + /tmp deployment never loads).
 *
 * Environment: DES_BUCKET, DES_KEY (the archive), optional DES_CACHE_DIR
 * (default /tmp/des-index), DES_CACHE_MB (the /tmp budget, default 256),
 * DES_MEMORY_MB (default 64), REDIS_URL, DES_REDIS_PREFIX (default "des:"),
 * DES_S3_ENDPOINT (an S3-compatible endpoint, path-style).
 */
import { S3Client } from "@aws-sdk/client-s3";
import { DesNotFoundError, FsIndexCache, MemoryIndexCache, TieredIndexCache } from "des-pack";
import type { DesReader, IndexCache } from "des-pack";
import { S3DesReader } from "des-pack/s3";

const env = process.env;
const endpoint = env.DES_S3_ENDPOINT;
const client = new S3Client(endpoint ? { endpoint, forcePathStyle: true } : {});

let cache: Promise<TieredIndexCache> | undefined;
let reader: Promise<DesReader> | undefined;

async function makeCache(): Promise<TieredIndexCache> {
  const tiers: IndexCache[] = [
    new MemoryIndexCache({ maxBytes: Number(env.DES_MEMORY_MB ?? 64) << 20 }),
    new FsIndexCache({ dir: env.DES_CACHE_DIR ?? "/tmp/des-index", maxBytes: Number(env.DES_CACHE_MB ?? 256) << 20 }),
  ];
  if (env.REDIS_URL) {
    const { RedisIndexCache } = await import("des-pack/redis");
    tiers.push(new RedisIndexCache({ url: env.REDIS_URL, keyPrefix: env.DES_REDIS_PREFIX ?? "des:", timeoutMs: 200 }));
  }
  return new TieredIndexCache(tiers);
}

/** The module-scope reader, opened on first use; a failed open is retried by the next invocation. */
function getReader(): Promise<DesReader> {
  reader ??= (async () => {
    cache ??= makeCache();
    const bucket = env.DES_BUCKET;
    const key = env.DES_KEY;
    if (!bucket || !key) throw new Error("set DES_BUCKET and DES_KEY");
    return S3DesReader.open({ client, bucket, key }, { cache: await cache });
  })();
  reader.catch(() => (reader = undefined));
  return reader;
}

/** `{ name }` (or an API Gateway / function URL request whose path is the name). */
export interface EntryEvent {
  readonly name?: string;
  readonly rawPath?: string;
}

export interface EntryResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly isBase64Encoded: boolean;
}

export async function handler(event: EntryEvent): Promise<EntryResponse> {
  const name = event.name ?? decodeURIComponent((event.rawPath ?? "").replace(/^\/+/, ""));
  const r = await getReader();
  try {
    const bytes = await r.get(name);
    return {
      statusCode: 200,
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) },
      body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
      isBase64Encoded: true,
    };
  } catch (e) {
    if (e instanceof DesNotFoundError) return { statusCode: 404, headers: {}, body: "", isBase64Encoded: false };
    throw e;
  }
}

/** Opens (or reuses) the reader without reading an entry, e.g. from an init hook; resolves to its entry count. */
export async function warmUp(): Promise<number> {
  return (await getReader()).entryCount;
}

/**
 * Waits for index-cache writes still in flight, then closes the reader and
 * the cache. A handler returns without waiting for them (they only save
 * later requests); call this from a shutdown hook (SIGTERM with an
 * extension, or before a test harness exits) so the next cold start finds
 * `/tmp` or Redis warm.
 */
export async function shutdown(): Promise<void> {
  const r = await reader?.catch(() => undefined);
  const c = await cache?.catch(() => undefined);
  reader = undefined;
  cache = undefined;
  await r?.close();
  await c?.close();
}
