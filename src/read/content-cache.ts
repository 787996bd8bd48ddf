import { DesInvalidArgumentError } from "../errors.js";
import type { EntryRecord } from "../format/record.js";
import { ByteLru } from "./lru.js";
import type { Opening } from "./opening.js";

/** `ReaderOptions.contentCache`: keep small, hot entries' bodies in memory. */
export interface ContentCacheOptions {
  /** Budget for cached bodies, bytes. */
  readonly maxBytes: number;
  /** Largest body kept, by its original size. Default: the smaller of 64 KiB and maxBytes / 16. */
  readonly maxEntryBytes?: number;
}

/** What the content cache has done since the reader opened. */
export interface ContentCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly bytes: number;
  readonly entries: number;
}

/** Bookkeeping per cached body beyond its bytes. */
const OVERHEAD = 64;

/**
 * Decoded bodies of small entries of ONE opening of the archive, so
 * repeated reads of a hot entry make no request. Off unless asked for. It
 * follows the reader's current opening: when the archive is reopened (it
 * changed), everything cached for the old opening is dropped, so a body is
 * only ever served with the index it was read with. Only bodies that were
 * checked (verify on) are kept; each caller gets its own copy.
 */
export class ContentCache {
  private readonly lru: ByteLru<string, Uint8Array>;
  private readonly maxEntryBytes: number;
  private opening: Opening | undefined;
  private hits = 0;
  private misses = 0;

  constructor(opts: ContentCacheOptions) {
    if (!opts || typeof opts !== "object" || !Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 1) {
      throw new DesInvalidArgumentError("contentCache.maxBytes must be an integer >= 1");
    }
    const max = opts.maxEntryBytes ?? Math.min(64 << 10, Math.floor(opts.maxBytes / 16));
    if (!Number.isSafeInteger(max) || max < 0)
      throw new DesInvalidArgumentError("contentCache.maxEntryBytes must be an integer >= 0");
    this.lru = new ByteLru(opts.maxBytes);
    this.maxEntryBytes = max;
  }

  private scope(o: Opening): void {
    if (o === this.opening) return;
    this.lru.clear();
    this.opening = o;
  }

  private static key(rec: EntryRecord): string {
    return `${rec.dataOffset}+${rec.storedSize}|${rec.name}`;
  }

  /** A copy of the cached body of `rec` in opening `o`, or undefined. */
  get(o: Opening, rec: EntryRecord): Uint8Array | undefined {
    if (rec.size > this.maxEntryBytes) return undefined;
    this.scope(o);
    const hit = this.lru.get(ContentCache.key(rec));
    if (hit) {
      this.hits++;
      return hit.slice();
    }
    this.misses++;
    return undefined;
  }

  /** Keeps a copy of a checked body of `rec`, read in opening `o`. */
  set(o: Opening, rec: EntryRecord, body: Uint8Array): void {
    if (body.length > this.maxEntryBytes) return;
    this.scope(o);
    this.lru.set(ContentCache.key(rec), body.slice(), body.length + rec.name.length * 2 + OVERHEAD);
  }

  stats(): ContentCacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.lru.bytes, entries: this.lru.size };
  }
}
