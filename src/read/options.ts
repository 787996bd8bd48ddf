import { DesInvalidArgumentError } from "../errors.js";
import { DEFAULT_TAIL_SIZE } from "../format/constants.js";
import { REMOTE_COST } from "../io/cost.js";
import type { ReadHints } from "../io/source.js";
import type { CacheLink } from "./cache-link.js";
import type { OpeningConfig } from "./opening.js";
import type { IndexCache } from "../io/cache.js";
import type { ExternalStore } from "../io/external.js";
import type { ContentCacheOptions } from "./content-cache.js";
import type { CostModel, CostWeights } from "../io/cost.js";
import type { BatchHints, Learning } from "./fetcher.js";
import { CostLearner } from "../io/learn.js";

export interface ReaderOptions {
  /**
   * Bytes read from the end at open. Default: the source's `hints.tailBytes`
   * (a local file: 4 KiB, the footer and a small root; S3 and HTTP: 64 KiB,
   * which costs the same request as 4 KiB), else 64 KiB.
   */
  tailSize?: number;
  /** Check data and meta checksums on every read (v2). Default true. */
  verify?: boolean;
  /**
   * The fixed coalescing rule: merge reads whose gap is at most `maxGap`,
   * up to `maxSpan`. Setting either replaces planning by cost for this
   * reader. Defaults come from the source (`source.hints`).
   */
  maxGap?: number;
  maxSpan?: number;
  concurrency?: number;
  /**
   * Overrides of the source's cost model (`source.hints.cost`), by which
   * batches are planned: fewest estimated wall time by default (see
   * docs/performance.md).
   */
  cost?: Partial<CostModel>;
  /**
   * Learn the cost model from this reader's own reads (docs/performance.md,
   * "The learned model"): after enough reads, the latency, bandwidth and
   * per-request cost they show replace the source's defaults, except the
   * fields set in `cost` (and `concurrency`), which always win. `true` or
   * `false` turns it on or off; a `CostLearner` is used (and fed) as given,
   * so readers of one medium can share what they learned. Default: the
   * source's `hints.learnCost` (on for S3 and HTTP, off for local files).
   */
  learnCost?: boolean | CostLearner;
  /**
   * When `source` is a path: read with synchronous pread (see
   * `FileSourceOptions.syncReads`). Default false.
   */
  syncReads?: boolean;
  /**
   * Largest entry `get`, `getMany`, `iterMany` and `verify` will hold in
   * memory, by its original size (compressed entries inflate to it). Bigger
   * entries are refused with DesInvalidArgumentError: read them with
   * `stream`. Guards against archives that claim absurd sizes. Default 1 GiB.
   */
  maxEntryBytes?: number;
  /**
   * Decoded bytes one `getMany` / `iterMany` / `getMetaMany` call may hold at
   * once, by the sizes the index states. `getMany` refuses a batch above it
   * (a batch of one entry is bounded by `maxEntryBytes` instead); `iterMany`
   * reads in waves within it, waiting for the consumer. Default 256 MiB.
   */
  maxBatchBytes?: number;
  /** Budget for decoded index pages, in bytes. Default 64 MiB. */
  pageCacheBytes?: number;
  /** Where external ("big") entries are fetched from. */
  externalStore?: ExternalStore;
  /**
   * The archive's key in the external store's namespace, for v1 entries
   * without `meta.external_key`: the body is then looked up at
   * `<dirname(archiveKey)>/_bigFiles/<name>`.
   */
  archiveKey?: string;
  /**
   * The prefix external keys of this archive live under: a key must start
   * with `<externalPrefix>/_bigFiles/`. Default: `dirname(archiveKey)`
   * (`_bigFiles/` when there is no archive key).
   */
  externalPrefix?: string;
  /**
   * Let entries name external keys outside the archive's external prefix.
   * Default false: an archive cannot make a reader holding credentials for a
   * whole bucket return an arbitrary object.
   */
  allowExternalKeysOutsidePrefix?: boolean;
  /**
   * A cache of raw tail and index bytes shared by readers (see
   * docs/caching.md). A warm open makes no request to the source.
   */
  cache?: IndexCache;
  /** Time to live of what this reader stores in `cache`, ms. Default: the cache's own policy. */
  cacheTtlMs?: number;
  /** Open this generation (1 = the archive as first written) instead of the newest (spec 3.8). */
  generation?: number;
  /**
   * Keep the bodies of small entries in memory (`maxBytes` in all, each at
   * most `maxEntryBytes`), so repeated reads of a hot entry make no request.
   * Off by default. Bodies are dropped when the archive is reopened.
   */
  contentCache?: ContentCacheOptions;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Overrides the reader's `verify` for this call. */
  verify?: boolean;
  /** getMeta / getMetaMany of v1 entries: objects as Maps in document order (Python's key order and integer-like keys kept). */
  maps?: boolean;
}

export interface ManyOptions extends ReadOptions {
  /** Names not in the archive: "throw" (default, before any data is read) or "skip". */
  missing?: "throw" | "skip";
  /** The fixed coalescing rule for this call (see ReaderOptions.maxGap). */
  maxGap?: number;
  maxSpan?: number;
  concurrency?: number;
  /** Overrides of the reader's cost model for this call. */
  cost?: Partial<CostModel>;
  /** Overrides the reader's `maxBatchBytes` for this call. */
  maxBatchBytes?: number;
}

export const DEFAULT_MAX_ENTRY_BYTES = 2 ** 30;
export const DEFAULT_MAX_BATCH_BYTES = 256 * 2 ** 20;
export const DEFAULT_PAGE_CACHE_BYTES = 64 << 20;
const MAX_CONCURRENCY = 4096;

/** Checks that `value`, when given, is an integer in [min, max]. */
export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new DesInvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

function checkBool(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean")
    throw new DesInvalidArgumentError(`${name} must be a boolean, got ${String(value)}`);
}

function checkHints(o: {
  maxGap?: unknown;
  maxSpan?: unknown;
  concurrency?: unknown;
  maxBatchBytes?: unknown;
  verify?: unknown;
}): void {
  checkInt("maxGap", o.maxGap, 0);
  checkInt("maxSpan", o.maxSpan, 1);
  checkInt("concurrency", o.concurrency, 1, MAX_CONCURRENCY);
  checkInt("maxBatchBytes", o.maxBatchBytes, 1);
  checkBool("verify", o.verify);
  const cost = (o as { cost?: Partial<CostModel> }).cost;
  if (cost !== undefined) checkCost(cost);
}

/**
 * Whether `checkReaderOptions` has anything to check: false for `{}` and
 * `{ syncReads: <boolean> }`, the options of most opens (so a cold open does
 * not compile the checks of options it was not given).
 */
export function readerOptionsToCheck(o: ReaderOptions): boolean {
  if (o === null || typeof o !== "object") return true;
  for (const k in o) if (k !== "syncReads" || typeof o.syncReads !== "boolean") return true;
  return false;
}

export function checkReaderOptions(o: ReaderOptions): void {
  if (o === null || typeof o !== "object") throw new DesInvalidArgumentError("reader options must be an object");
  checkInt("tailSize", o.tailSize, 256, 2 ** 30);
  checkHints(o);
  checkInt("maxEntryBytes", o.maxEntryBytes, 0);
  checkInt("pageCacheBytes", o.pageCacheBytes, 0);
  checkInt("cacheTtlMs", o.cacheTtlMs, 1);
  checkBool("syncReads", o.syncReads);
  checkBool("allowExternalKeysOutsidePrefix", o.allowExternalKeysOutsidePrefix);
  if (o.learnCost !== undefined && typeof o.learnCost !== "boolean" && !(o.learnCost instanceof CostLearner))
    throw new DesInvalidArgumentError("learnCost must be a boolean or a CostLearner");
  if (o.contentCache !== undefined) {
    if (o.contentCache === null || typeof o.contentCache !== "object")
      throw new DesInvalidArgumentError("contentCache must be { maxBytes, maxEntryBytes? }");
    checkInt("contentCache.maxBytes", o.contentCache.maxBytes ?? -1, 1);
    checkInt("contentCache.maxEntryBytes", o.contentCache.maxEntryBytes, 0);
  }
  if (o.cache !== undefined && (typeof o.cache !== "object" || o.cache === null || typeof o.cache.get !== "function")) {
    throw new DesInvalidArgumentError("cache must be an IndexCache");
  }
}

export function checkReadOptions(o: ReadOptions): void {
  if (o === null || typeof o !== "object") throw new DesInvalidArgumentError("options must be an object");
  checkBool("verify", o.verify);
  checkBool("maps", o.maps);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new DesInvalidArgumentError("signal must be an AbortSignal");
}

export function checkManyOptions(o: ManyOptions): void {
  if (o === null || typeof o !== "object") throw new DesInvalidArgumentError("options must be an object");
  checkHints(o);
  if (o.missing !== undefined && o.missing !== "throw" && o.missing !== "skip") {
    throw new DesInvalidArgumentError(`missing must be "throw" or "skip", got ${String(o.missing)}`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new DesInvalidArgumentError("signal must be an AbortSignal");
}

/** Per-call overrides of the reader's coalescing. */
export function hintsOf(opts: ManyOptions): BatchHints {
  const h: { -readonly [K in keyof BatchHints]?: BatchHints[K] } = {};
  if (opts.maxGap !== undefined) h.maxGap = opts.maxGap;
  if (opts.maxSpan !== undefined) h.maxSpan = opts.maxSpan;
  if (opts.concurrency !== undefined) h.concurrency = opts.concurrency;
  if (opts.cost !== undefined) h.costOverrides = opts.cost;
  return h;
}

/** Checks a (partial) cost model. */
export function checkCost(c: Partial<CostModel> | undefined): void {
  if (c === undefined) return;
  if (c === null || typeof c !== "object") throw new DesInvalidArgumentError("cost must be an object");
  const positive = (name: string, v: unknown): void => {
    if (v !== undefined && (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)))
      throw new DesInvalidArgumentError(`cost.${name} must be a positive number, got ${String(v)}`);
  };
  if (
    c.firstByteMs !== undefined &&
    (typeof c.firstByteMs !== "number" || !(c.firstByteMs >= 0) || !Number.isFinite(c.firstByteMs))
  ) {
    throw new DesInvalidArgumentError(`cost.firstByteMs must be a non-negative number, got ${String(c.firstByteMs)}`);
  }
  if (
    c.requestCpuMs !== undefined &&
    (typeof c.requestCpuMs !== "number" || !(c.requestCpuMs >= 0) || !Number.isFinite(c.requestCpuMs))
  ) {
    throw new DesInvalidArgumentError(`cost.requestCpuMs must be a non-negative number, got ${String(c.requestCpuMs)}`);
  }
  positive("bytesPerMs", c.bytesPerMs);
  if (c.clientBytesPerMs !== Infinity) positive("clientBytesPerMs", c.clientBytesPerMs);
  // Infinity lifts a shared-link limit the source's model has.
  if (c.linkBytesPerMs !== Infinity) positive("linkBytesPerMs", c.linkBytesPerMs);
  checkInt("cost.maxConcurrency", c.maxConcurrency, 1, MAX_CONCURRENCY);
  checkInt("cost.maxInflightBytes", c.maxInflightBytes, 1);
  checkInt("cost.maxSpan", c.maxSpan, 1);
  const o = c.objective;
  if (o !== undefined && o !== "latency" && o !== "requests") {
    const w = o as Partial<CostWeights> | null;
    const ok =
      w !== null &&
      typeof w === "object" &&
      (["perRequest", "perByte", "perMs"] as const).every(
        (k) => typeof w[k] === "number" && w[k]! >= 0 && Number.isFinite(w[k]),
      );
    if (!ok)
      throw new DesInvalidArgumentError(
        `cost.objective must be "latency", "requests" or { perRequest, perByte, perMs } (non-negative numbers)`,
      );
  }
}

/** What every opening of a reader uses: tail size, page cache budget, read hints with the cost model, the cache link. */
export function openingConfig(hints: ReadHints, options: ReaderOptions, cache: CacheLink | undefined): OpeningConfig {
  const cost = readerCost(hints, options);
  const learning = cost ? learningOf(hints, options) : undefined;
  return {
    ...(learning ? { learning } : {}),
    tailSize: options.tailSize ?? hints.tailBytes ?? DEFAULT_TAIL_SIZE,
    pageCacheBytes: options.pageCacheBytes ?? DEFAULT_PAGE_CACHE_BYTES,
    hints: {
      maxGap: options.maxGap ?? hints.maxGap,
      maxSpan: options.maxSpan ?? hints.maxSpan,
      concurrency: options.concurrency ?? hints.concurrency,
      ...(cost ? { cost } : {}),
    },
    cache,
  };
}

/** The reader's learning, when on: its learner and the cost fields it pinned. */
function learningOf(hints: ReadHints, options: ReaderOptions): Learning | undefined {
  const on = options.learnCost ?? hints.learnCost ?? false;
  if (on === false) return undefined;
  const pinned = new Set<keyof CostModel>();
  for (const [k, v] of Object.entries(options.cost ?? {})) if (v !== undefined) pinned.add(k as keyof CostModel);
  if (options.concurrency !== undefined) pinned.add("maxConcurrency");
  return { learner: on === true ? new CostLearner() : on, pinned };
}

/**
 * The reader's cost model: the source's, with the reader's overrides (on
 * REMOTE_COST when the source states none). A reader given maxGap or maxSpan
 * and no cost keeps the fixed rule.
 */
function readerCost(hints: ReadHints, options: ReaderOptions): CostModel | undefined {
  const concurrency = options.concurrency !== undefined ? { maxConcurrency: options.concurrency } : {};
  if (options.cost) return { ...(hints.cost ?? REMOTE_COST), ...concurrency, ...options.cost };
  if (options.maxGap !== undefined || options.maxSpan !== undefined || !hints.cost) return undefined;
  return { ...hints.cost, ...concurrency };
}
