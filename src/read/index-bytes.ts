import type { CacheLink } from "./cache-link.js";
import type { BatchHints, Fetcher } from "./fetcher.js";
import { sliceWant } from "./coalesce.js";
import type { RangeWant } from "./coalesce.js";
import { SharedRegistry } from "./shared.js";

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * Raw bytes of index structures (v2 pages and root, the v1 index) for one
 * opening: from the tail read at open, else the cache, else the source in
 * coalesced reads (then stored in the cache). Concurrent misses of one range
 * share one fetch: process-wide through a cache, per opening without one.
 */
export class IndexBytes {
  /** Shared fetches without a cache: made on the first batch (a first lookup never needs it). */
  declare private local: SharedRegistry | undefined;
  declare readonly fetcher: Fetcher;
  declare private readonly link: CacheLink | undefined;

  constructor(fetcher: Fetcher, link: CacheLink | undefined) {
    this.fetcher = fetcher;
    this.link = link;
    this.local = undefined;
  }

  /** Caching needs a version token: a cached range must name the exact bytes it came from. */
  private get version(): string | undefined {
    return this.link ? this.fetcher.pinnedVersion : undefined;
  }

  private keyOf(r: ByteRange): string {
    const v = this.version;
    return v !== undefined ? this.link!.rangeKey(v, r.offset, r.length) : `${r.offset}+${r.length}`;
  }

  private get registry(): SharedRegistry {
    return this.version !== undefined ? this.link!.inflight : (this.local ??= new SharedRegistry());
  }

  /**
   * One range: `load([range])` without the batch machinery when there is no
   * cache (the fetcher already shares identical reads in flight), so an open
   * and a first lookup cost one read each and no shared-task bookkeeping.
   */
  loadOne(range: ByteRange, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.link) return this.load([range], signal).then((b) => b[0]!);
    return this.fetcher.read(range.offset, range.length, signal);
  }

  /**
   * One range at once, without a promise: from the tail, or (without a
   * cache, which is asynchronous) from a source that reads on the calling
   * thread; undefined otherwise (use `loadOne`).
   */
  loadSync(range: ByteRange): Uint8Array | undefined {
    if (this.link) return this.fetcher.fromTail(range.offset, range.length);
    return this.fetcher.readSync(range.offset, range.length);
  }

  /**
   * The bytes of every range, in order. `hints` plan the source reads (the
   * call's cost overrides); ranges already being fetched for another caller
   * are shared, read as that caller planned them.
   */
  async load(ranges: readonly ByteRange[], signal?: AbortSignal, hints: BatchHints = {}): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(ranges.length);
    const waits: Promise<void>[] = [];
    const fresh: ByteRange[] = [];
    const freshKeys: string[] = [];
    const freshAt: number[] = [];
    const registry = this.registry;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      const inTail = this.fetcher.fromTail(r.offset, r.length);
      if (inTail) {
        out[i] = inTail;
        continue;
      }
      const key = this.keyOf(r);
      const running = registry.get<Map<string, Uint8Array>>(key);
      if (running) {
        const at = i;
        waits.push(running.join(signal).then((m) => void (out[at] = m.get(key)!)));
      } else {
        fresh.push(r);
        freshKeys.push(key);
        freshAt.push(i);
      }
    }
    if (fresh.length > 0) {
      const task = registry.start(freshKeys, (sig) => this.fetch(fresh, freshKeys, sig, hints), signal);
      waits.push(
        task.join(signal).then((m) => {
          for (let j = 0; j < freshKeys.length; j++) out[freshAt[j]!] = m.get(freshKeys[j]!)!;
        }),
      );
    }
    await Promise.all(waits);
    return out;
  }

  /** Cache first (one round trip for the batch), then the source for what it lacks. */
  private async fetch(
    ranges: readonly ByteRange[],
    keys: readonly string[],
    signal: AbortSignal | undefined,
    hints: BatchHints,
  ): Promise<Map<string, Uint8Array>> {
    const got = new Map<string, Uint8Array>();
    const version = this.version;
    const wants: RangeWant<number>[] = [];
    const cached = version !== undefined ? await this.link!.getRanges(version, ranges, signal) : undefined;
    for (let i = 0; i < ranges.length; i++) {
      const hit = cached?.[i];
      if (hit) got.set(keys[i]!, hit);
      else wants.push({ offset: ranges[i]!.offset, length: ranges[i]!.length, item: i });
    }
    const store = (i: number, bytes: Uint8Array): void => {
      got.set(keys[i]!, bytes);
      if (version !== undefined) this.link!.putRange(version, ranges[i]!.offset, bytes);
    };
    if (wants.length === 1) {
      const w = wants[0]!;
      store(w.item, await this.fetcher.read(w.offset, w.length, signal));
    } else if (wants.length > 1) {
      await this.fetcher.readGroups(wants, signal, hints, (group, bytes) => {
        for (const w of group.wants) store(w.item, sliceWant(group, bytes, w));
      });
    }
    return got;
  }
}
