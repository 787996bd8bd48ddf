/**
 * des-pack/redis: a shared archive-index cache in Redis, on ioredis (an
 * optional peer dependency, loaded only by this entry point).
 */
export { RedisIndexCache, redisClientOptions } from "../cache/redis.js";
export type { RedisIndexCacheOptions, RedisIndexCacheStats } from "../cache/redis.js";
export type { IndexCache, IndexCacheStats } from "../io/cache.js";
