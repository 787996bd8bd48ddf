import type { Location } from "../io/location.js";
import type { ShardLayout } from "./layout.js";

/* The public options and statistics of DailyShardedDesStore. */

export interface DailyStoreOptions {
  /** A folder path, or a Location (an S3 location from `des-pack/s3`; then `spoolDir` is required). */
  readonly location: string | Location;
  /** 0..255; every process writing to one location needs its own. */
  readonly nodeId: number;
  /** Shards per day: 2^shardBits, 1..32. Default 8. */
  readonly shardBits?: number;
  /** Name prefix. Default "DES". */
  readonly prefix?: string;
  /** 27..32 (fewer bits would repeat names within a day). Default 32. */
  readonly wrapBits?: number;
  readonly clock?: () => number;
  /** Day of a name: IANA zone (default UTC) or a function; see SnowflakeNameGenerator. */
  readonly timeZone?: string;
  readonly day?: (epochMs: number) => string | Date;
  /** "hex" (`<day>/<hh>.des`, the Python store, default) or "packer" (`<day>/shard_NN.des`). */
  readonly layout?: ShardLayout;
  /** Local folder for journals and parts waiting for upload. Default `<folder>/_spool` for a folder location. */
  readonly spoolDir?: string;
  /** A journal is sealed into parts at this size. Default 64 MiB. */
  readonly maxBytes?: number;
  /** ... or at this many entries. Default 250,000. */
  readonly maxEntries?: number;
  /** ... or this long after its first put. Default 60,000 ms. */
  readonly maxAgeMs?: number;
  /** Bytes queued for the disk before `put` waits (backpressure). Default 32 MiB. */
  readonly maxQueuedBytes?: number;
  /** A miss on a listing older than this lists the day and shard again. Default 1,000 ms. */
  readonly listTtlMs?: number;
  /** Sealed parts kept open for reading. Default 512. */
  readonly maxOpenParts?: number;
}

export interface StorePutOptions {
  /** Any MessagePack value, returned by `getMeta`. */
  readonly meta?: unknown;
  /**
   * The day of the name (default: today, in the store's zone). A name holds
   * the low `wrapBits` bits of its millisecond: puts for one explicit past
   * day made 2^wrapBits ms or more apart (about 49.7 days at 32) can repeat
   * names, so back-fill a day within that span.
   */
  readonly day?: Date | string;
}

export interface StoreStats {
  readonly puts: number;
  /** Group commits (one write + fdatasync each). */
  readonly commits: number;
  /** Most bytes queued for the current journal at once (bounded by maxQueuedBytes plus one record). */
  readonly peakQueuedBytes: number;
  readonly sealedJournals: number;
  readonly sealedParts: number;
  /** Listings of day+shard prefixes made by readers. */
  readonly listings: number;
}
