import type { DesReader } from "../read/reader.js";
import { candidateParts, parsePartKey, shardPrefix } from "./layout.js";
import type { PartKey, ShardLayout } from "./layout.js";
import type { PartBackend } from "./parts.js";

interface Listing {
  parts: PartKey[];
  at: number;
}

interface OpenPart {
  reader: Promise<DesReader>;
  busy: number;
  evicted: boolean;
}

/**
 * Finds the sealed part that holds a name: one listing per day and shard
 * (cached; listed again only on a miss older than `listTtlMs`), then the
 * parts whose node and F range fit the name, each opened once and kept in a
 * bounded cache of readers.
 */
export class PartFinder {
  private readonly listings = new Map<string, Listing>();
  private readonly listing = new Map<string, Promise<Listing>>();
  /**
   * Parts this process sealed while the listing of their prefix was in
   * flight: merged into its result, which may predate them.
   */
  private readonly addedDuring = new Map<string, PartKey[]>();
  private readonly open = new Map<string, OpenPart>();
  /** How many listings were made (tests check "at most one per day and shard"). */
  listCalls = 0;

  constructor(
    private readonly backend: PartBackend,
    private readonly bits: number,
    private readonly layout: ShardLayout,
    private readonly listTtlMs: number,
    private readonly maxOpenParts: number,
  ) {}

  private async list(day: string, shard: number): Promise<Listing> {
    const prefix = shardPrefix(day, shard, this.bits, this.layout);
    let p = this.listing.get(prefix);
    if (!p) {
      this.listCalls++;
      const during: PartKey[] = [];
      this.addedDuring.set(prefix, during);
      p = this.backend.list(prefix).then((keys) => {
        const parts: PartKey[] = [];
        for (const k of keys) {
          const pk = parsePartKey(k, day, shard, this.bits, this.layout);
          if (pk) parts.push(pk);
        }
        const listed = new Set(keys);
        for (const pk of during) if (!listed.has(pk.key)) parts.push(pk);
        const l = { parts, at: Date.now() };
        this.listings.set(prefix, l);
        return l;
      });
      this.listing.set(prefix, p);
      const clear = (): void => {
        this.listing.delete(prefix);
        if (this.addedDuring.get(prefix) === during) this.addedDuring.delete(prefix);
      };
      p.then(clear, clear);
    }
    return p;
  }

  /** The parts of one day and shard (cached listing). */
  async parts(day: string, shard: number, fresh = false): Promise<PartKey[]> {
    const prefix = shardPrefix(day, shard, this.bits, this.layout);
    const cached = this.listings.get(prefix);
    if (cached && !fresh) return cached.parts;
    return (await this.list(day, shard)).parts;
  }

  /** Keys of the parts that may hold a name with this node and F, most specific first (cached listing). */
  async candidates(day: string, shard: number, nodeId: number, f: number): Promise<string[]> {
    return candidateParts(await this.parts(day, shard), nodeId, f).map((p) => p.key);
  }

  /**
   * Records a part this process just sealed, so reading it needs no new
   * listing: in the cached listing of its prefix, and in the result of a
   * listing in flight (which may have been made before the part existed).
   */
  added(part: PartKey): void {
    const prefix = shardPrefix(part.day, part.shard, this.bits, this.layout);
    const l = this.listings.get(prefix);
    if (l && !l.parts.some((p) => p.key === part.key)) l.parts.push(part);
    this.addedDuring.get(prefix)?.push(part);
  }

  /** Forgets a day's listings and closes readers of parts that are gone. */
  forget(day: string, removedKeys: readonly string[] = []): void {
    for (const k of [...this.listings.keys()]) if (k.startsWith(`${day}/`)) this.listings.delete(k);
    for (const k of removedKeys) this.evict(k);
  }

  /**
   * Runs `fn` on the reader of the first candidate part for which it returns
   * a value other than undefined. A miss on a listing older than the TTL
   * lists once more (another node may have sealed a part since).
   */
  async find<T>(
    day: string,
    shard: number,
    nodeId: number,
    f: number,
    fn: (r: DesReader, key: string) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const prefix = shardPrefix(day, shard, this.bits, this.layout);
    for (let round = 0; round < 2; round++) {
      const listing =
        round === 0 ? (this.listings.get(prefix) ?? (await this.list(day, shard))) : await this.list(day, shard);
      let stale = false;
      for (const part of candidateParts(listing.parts, nodeId, f)) {
        try {
          const v = await this.withReader(part.key, (r) => fn(r, part.key));
          if (v !== undefined) return v;
        } catch (e) {
          // A part listed but gone (compacted away): list again.
          if (round === 0 && isGone(e)) {
            this.evict(part.key);
            stale = true;
            continue;
          }
          throw e;
        }
      }
      if (!stale && Date.now() - listing.at < this.listTtlMs) return undefined;
    }
    return undefined;
  }

  /** Runs `fn` with the (cached) reader of `key`; the reader is not closed while `fn` runs. */
  async withReader<T>(key: string, fn: (r: DesReader) => Promise<T>): Promise<T> {
    let op = this.open.get(key);
    if (op) {
      this.open.delete(key); // re-insert: most recently used last
      this.open.set(key, op);
    } else {
      op = { reader: this.backend.open(key), busy: 0, evicted: false };
      this.open.set(key, op);
      op.reader.catch(() => {
        if (this.open.get(key) === op) this.open.delete(key);
      });
      this.trim();
    }
    op.busy++;
    try {
      return await fn(await op.reader);
    } finally {
      op.busy--;
      if (op.evicted && op.busy === 0) void closeQuietly(op.reader);
    }
  }

  private trim(): void {
    for (const [k] of this.open) {
      if (this.open.size <= this.maxOpenParts) break;
      this.evict(k);
    }
  }

  evict(key: string): void {
    const op = this.open.get(key);
    if (!op) return;
    this.open.delete(key);
    op.evicted = true;
    if (op.busy === 0) void closeQuietly(op.reader);
  }

  async close(): Promise<void> {
    for (const k of [...this.open.keys()]) this.evict(k);
  }
}

async function closeQuietly(r: Promise<DesReader>): Promise<void> {
  try {
    await (await r).close();
  } catch {
    // failed to open, or already closed
  }
}

function isGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  const cause = (e as { cause?: { code?: string } }).cause;
  return (
    code === "ENOENT" ||
    code === "DES_NOT_FOUND" ||
    cause?.code === "ENOENT" ||
    code === "DES_IO" ||
    code === "DES_CHANGED"
  );
}
