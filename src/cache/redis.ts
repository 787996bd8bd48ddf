import { Redis } from "ioredis";
import type { RedisOptions } from "ioredis";
import { DesInvalidArgumentError } from "../errors.js";
import type { IndexCache, IndexCacheStats } from "../io/cache.js";

export interface RedisIndexCacheOptions {
  /** A client you own (you also close it). Give `client` or `url`. */
  readonly client?: Redis;
  /** `redis://[user:pass@]host:port[/db]` or `rediss://`; the cache then owns its client (configured to fail fast). */
  readonly url?: string;
  /** Put before every key, so several applications can share one Redis and purges stay inside it. Default "des:". */
  readonly keyPrefix?: string;
  /** Default lifetime of an entry (PX). Default: none (Redis' own eviction policy applies). */
  readonly ttlMs?: number;
  /** A command (or a pipeline) that takes longer is abandoned and served as a miss. Default 250. */
  readonly timeoutMs?: number;
  /** After a timeout, Redis is left alone for this long (misses, no commands sent). Default 1000. */
  readonly retryAfterMs?: number;
  /** Keys asked per SCAN step and unlinked per UNLINK by `deletePrefix`. Default 500. */
  readonly scanCount?: number;
}

/** What RedisIndexCache reports, beyond the common IndexCacheStats (`bytes` and `entries` are not known: 0). */
export interface RedisIndexCacheStats extends IndexCacheStats {
  /** Commands or pipelines sent (a `getMany` is one). */
  readonly roundTrips: number;
  readonly timeouts: number;
  /** Calls answered without asking Redis (not connected, or resting after a timeout). Counted in `errors` too. */
  readonly skipped: number;
}

/** What the cache configures on a client it creates: fail fast, reconnect with capped backoff, never queue. */
export function redisClientOptions(timeoutMs: number): RedisOptions {
  return {
    // Commands while disconnected fail at once instead of piling up for a reconnect.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(1000, timeoutMs * 4),
    // Reconnect forever with a capped, jittered backoff: no storm, and the cache comes back by itself.
    retryStrategy: (times: number) => Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 100),
    reconnectOnError: () => false,
  };
}

const TIMEOUT = Symbol("timeout");

/**
 * An IndexCache in Redis (ioredis), to share one archive index across a
 * fleet: the first process fills it, every other one opens with no request
 * to the archive's store.
 *
 * Binary-safe (values go in and out as Buffers), TTL with `PX`, `getMany`
 * in one pipeline (one round trip), `deletePrefix` by `SCAN MATCH` +
 * `UNLINK` in batches under this cache's `keyPrefix` only (never `KEYS`,
 * never `FLUSHDB`). Redis is an accelerator, never a dependency: when it is
 * down, slower than `timeoutMs` or answers with an error, the call is served
 * as a miss (or a no-op) and counted in `errors`; when it comes back it is
 * used again. No call ever throws for a Redis failure.
 */
export class RedisIndexCache implements IndexCache {
  readonly client: Redis;
  readonly keyPrefix: string;
  private readonly owned: boolean;
  private readonly ttlMs: number | undefined;
  private readonly timeoutMs: number;
  private readonly retryAfterMs: number;
  private readonly scanCount: number;
  private restUntil = 0;
  private everReady: boolean;
  private hits = 0;
  private misses = 0;
  private sets = 0;
  private errors = 0;
  private roundTrips = 0;
  private timeouts = 0;
  private skipped = 0;

  constructor(opts: RedisIndexCacheOptions) {
    if (!opts || (!opts.client && !opts.url))
      throw new DesInvalidArgumentError("RedisIndexCache needs a client or a url");
    if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new DesInvalidArgumentError("ttlMs must be > 0");
    this.timeoutMs = opts.timeoutMs ?? 250;
    if (!(this.timeoutMs > 0)) throw new DesInvalidArgumentError("timeoutMs must be > 0");
    this.retryAfterMs = opts.retryAfterMs ?? 1000;
    this.scanCount = opts.scanCount ?? 500;
    if (!Number.isSafeInteger(this.scanCount) || this.scanCount < 1)
      throw new DesInvalidArgumentError("scanCount must be an integer >= 1");
    this.keyPrefix = opts.keyPrefix ?? "des:";
    this.ttlMs = opts.ttlMs;
    if (opts.client) {
      this.client = opts.client;
      this.owned = false;
    } else {
      this.client = new Redis(opts.url!, redisClientOptions(this.timeoutMs));
      this.owned = true;
      // Connection errors are expected (Redis down); reconnecting is ioredis' job. Never an unhandled 'error'.
      this.client.on("error", () => undefined);
    }
    this.everReady = this.client.status === "ready";
    if (!this.everReady) this.client.once("ready", () => (this.everReady = true));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const got = await this.call(() => this.client.getBuffer(this.keyPrefix + key));
    if (got instanceof Uint8Array) {
      this.hits++;
      return plain(got);
    }
    this.misses++;
    return undefined;
  }

  /** All keys in one pipeline: one round trip. A failed pipeline is all misses. */
  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const res = await this.call(() => {
      const p = this.client.pipeline();
      for (const k of keys) p.getBuffer(this.keyPrefix + k);
      return p.exec();
    });
    return keys.map((_, i) => {
      const r = res?.[i];
      const v: unknown = r && !r[0] ? r[1] : undefined;
      if (r?.[0]) this.errors++;
      if (v instanceof Uint8Array) {
        this.hits++;
        return plain(v);
      }
      this.misses++;
      return undefined;
    });
  }

  async set(key: string, bytes: Uint8Array, opts: { readonly ttlMs?: number } = {}): Promise<void> {
    this.sets++;
    const ttl = opts.ttlMs ?? this.ttlMs;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const k = this.keyPrefix + key;
    if (ttl !== undefined) {
      const px = Math.ceil(ttl);
      if (!(px > 0)) return;
      await this.call(() => this.client.set(k, buf, "PX", px));
    } else {
      await this.call(() => this.client.set(k, buf));
    }
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.client.unlink(this.keyPrefix + key));
  }

  /**
   * Drops every key under `keyPrefix + prefix`: SCAN with a MATCH pattern
   * (glob characters escaped) and UNLINK per batch; a key is unlinked only if
   * it really starts with the prefix. Stops (returning what went so far) if
   * Redis fails midway.
   */
  async deletePrefix(prefix: string): Promise<number> {
    const full = this.keyPrefix + prefix;
    const pattern = escapeGlob(full) + "*";
    let cursor = "0";
    let n = 0;
    do {
      const step = await this.call(() => this.client.scan(cursor, "MATCH", pattern, "COUNT", this.scanCount));
      if (!step) return n;
      cursor = step[0];
      const keys = step[1].filter((k) => k.startsWith(full));
      for (let i = 0; i < keys.length; i += this.scanCount) {
        const batch = keys.slice(i, i + this.scanCount);
        const gone = await this.call(() => this.client.unlink(...batch));
        if (gone === undefined) return n;
        n += gone;
      }
    } while (cursor !== "0");
    return n;
  }

  stats(): RedisIndexCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      evictions: 0,
      errors: this.errors,
      bytes: 0,
      entries: 0,
      roundTrips: this.roundTrips,
      timeouts: this.timeouts,
      skipped: this.skipped,
    };
  }

  /** Closes the client if the cache created it (a client you passed stays open). */
  async close(): Promise<void> {
    if (!this.owned) return;
    if (this.client.status === "ready") {
      const quit = this.client.quit().catch(() => undefined);
      const timer = new Promise((r) => setTimeout(r, this.timeoutMs).unref());
      await Promise.race([quit, timer]);
    }
    this.client.disconnect();
  }

  /** Runs one command (or pipeline) with the timeout; undefined on any failure. */
  private async call<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (!(await this.usable())) {
      this.skipped++;
      this.errors++;
      return undefined;
    }
    this.roundTrips++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const pending = op();
      pending.catch(() => undefined); // a late failure after a timeout is not unhandled
      const result = await Promise.race([
        pending,
        new Promise<typeof TIMEOUT>((resolve) => {
          timer = setTimeout(() => resolve(TIMEOUT), this.timeoutMs);
        }),
      ]);
      if (result === TIMEOUT) {
        this.timeouts++;
        this.errors++;
        this.restUntil = Date.now() + this.retryAfterMs;
        return undefined;
      }
      return result;
    } catch {
      this.errors++;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ready now; or, for the very first connection, ready within the timeout. Never waits on a reconnect. */
  private async usable(): Promise<boolean> {
    if (Date.now() < this.restUntil) return false;
    const c = this.client;
    if (c.status === "ready") return true;
    if (this.everReady || (c.status !== "connecting" && c.status !== "connect" && c.status !== "wait")) return false;
    if (c.status === "wait") c.connect().catch(() => undefined);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        c.off("ready", done);
        c.off("end", done);
        resolve();
      };
      const timer = setTimeout(done, this.timeoutMs);
      c.once("ready", done);
      c.once("end", done);
    });
    return (c.status as string) === "ready";
  }
}

/** A Buffer as a plain Uint8Array view (same memory), so callers see one type from every cache. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Escapes Redis glob characters so a prefix matches only itself. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\^]/g, (c) => "\\" + c);
}
