import { DesChangedError, DesClosedError } from "../errors.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import { openIndex } from "./archive-index.js";
import type { ArchiveIndex, Tail } from "./archive-index.js";
import type { CacheLink } from "./cache-link.js";
import { hasherReady, loadHasher } from "../format/hash.js";
import { Fetcher } from "./fetcher.js";
import type { IoStats, Learning, TailRead } from "./fetcher.js";
import { IndexBytes } from "./index-bytes.js";
import { committedPrefix } from "./prefix.js";
import { SharedTask } from "./shared.js";

export interface OpeningConfig {
  readonly tailSize: number;
  readonly pageCacheBytes: number;
  readonly hints: ReadHints;
  readonly cache: CacheLink | undefined;
  /** Learning of the cost model from this reader's reads, when on. */
  readonly learning?: Learning;
}

/**
 * One opened generation of an archive: the tail it was opened from, its
 * version token, its index and the fetcher every read of it goes through
 * (pinned to that version). Records found in an opening are only ever read
 * with that opening's fetcher.
 */
export class Opening {
  declare readonly fetcher: Fetcher;
  declare readonly index: ArchiveIndex;
  declare readonly tail: Tail;
  declare readonly version: string | undefined;
  /** Whether the tail came from the index cache (no request to the source). */
  declare readonly warm: boolean;
  declare readonly bytes: IndexBytes;

  private constructor(fetcher: Fetcher, bytes: IndexBytes, index: ArchiveIndex, tail: TailRead, warm: boolean) {
    this.fetcher = fetcher;
    this.bytes = bytes;
    this.index = index;
    this.tail = { bytes: tail.bytes, start: tail.size - tail.bytes.length, size: tail.size };
    this.version = tail.version;
    this.warm = warm;
  }

  get size(): number {
    return this.tail.size;
  }

  /** Opens from the cached tail when there is one, unless `fresh` (a reopen after a change reads the source). */
  static async load(source: RangeSource, cfg: OpeningConfig, signal?: AbortSignal, fresh = false): Promise<Opening> {
    const fetcher = new Fetcher(source, cfg.hints, cfg.learning);
    const link = cfg.cache;
    const reading = link
      ? cachedTail(source, fetcher, link, cfg.tailSize, signal, fresh)
      : fetcher.readTail(cfg.tailSize, signal).then((t) => ({ tail: t, warm: false }));
    // The hash WebAssembly is compiled while the tail is read (on the first open of a process; at once
    // after it, on a synchronous source), so the first checksum waits for neither.
    const [{ tail, warm }] = await Promise.all([reading, hasherReady() ? undefined : loadHasher()]);
    fetcher.adopt(tail);
    const bytes = new IndexBytes(fetcher, link);
    let index: ArchiveIndex;
    try {
      index = await openIndex(
        { bytes: tail.bytes, start: tail.size - tail.bytes.length, size: tail.size },
        bytes,
        cfg.pageCacheBytes,
        signal,
      );
    } catch (e) {
      // A torn tail (an append in progress or crashed, spec 3.8.3): open the committed prefix, uncached.
      const prefix = await committedPrefix(e, fetcher, tail.size, signal);
      if (!prefix) throw e;
      return Opening.load(prefix, { ...cfg, cache: undefined }, signal);
    }
    return new Opening(fetcher, bytes, index, tail, warm);
  }
}

/**
 * The tail through the index cache: from the cache when it holds one for the
 * source's current version (unless `fresh`, a reopen after a change), else
 * read and stored. Its own function so that an open without a cache never
 * compiles it.
 */
async function cachedTail(
  source: RangeSource,
  fetcher: Fetcher,
  link: CacheLink,
  tailSize: number,
  signal: AbortSignal | undefined,
  fresh: boolean,
): Promise<{ tail: TailRead; warm: boolean }> {
  if (fresh) {
    const tail = await fetcher.readTail(tailSize, signal);
    await loadHasher(); // cache values are framed with a checksum
    link.putTail(tail);
    return { tail, warm: false };
  }
  await loadHasher(); // cache values are framed with a checksum
  // Concurrent opens of one archive through one cache share one lookup and one tail read.
  return link.shared(
    link.tailKey,
    async (sig) => {
      const cached = await link.getTail(sig);
      // A source that knows its current version without a request (a local file) vetoes a stale cached tail.
      if (cached) {
        if (source.currentVersion === undefined || (await source.currentVersion(sig)) === cached.version)
          return { tail: cached as TailRead, warm: true };
        // What the cache holds describes an older version: drop it, as a reopen after a change does.
        await link.purge();
      }
      const read = await fetcher.readTail(tailSize, sig);
      link.putTail(read);
      return { tail: read, warm: false };
    },
    signal,
  );
}

/**
 * The current opening of an archive and the one consistency rule: an
 * operation runs against one opening; if the source reports that the archive
 * changed, the cached index of that archive is dropped, the archive is
 * reopened once (one reopen shared by every caller that saw the change) and
 * the whole operation runs again on the new opening. A second change is a
 * DesChangedError.
 */
export class Openings {
  declare private now: Opening;
  declare private reopening: SharedTask<Opening> | undefined;
  declare private readonly retired: IoStats;
  declare closed: boolean;
  declare private readonly source: RangeSource;
  declare private readonly cfg: OpeningConfig;

  constructor(source: RangeSource, cfg: OpeningConfig, first: Opening) {
    this.source = source;
    this.cfg = cfg;
    this.now = first;
    this.reopening = undefined;
    this.retired = { requests: 0, bytes: 0 };
    this.closed = false;
  }

  get current(): Opening {
    return this.now;
  }

  /** Requests and bytes of every opening so far. */
  get stats(): IoStats {
    const s = this.now.fetcher.stats;
    return { requests: this.retired.requests + s.requests, bytes: this.retired.bytes + s.bytes };
  }

  /**
   * Runs `op` on the current opening; on a change, reopens and runs it once
   * more from the start on the new one. `mayRetry` is asked first: an
   * operation that already handed out results from the old opening says no,
   * and the change is then reported as it is.
   */
  run<T>(op: (o: Opening) => Promise<T>, signal?: AbortSignal, mayRetry?: () => boolean): Promise<T> {
    if (this.closed) return Promise.reject(new DesClosedError());
    const first = this.now;
    // Promise chaining rather than an async frame: a pending call holds as little as possible.
    return op(first).catch((e: unknown) => this.retry(e, op, first, signal, mayRetry));
  }

  private async retry<T>(
    e: unknown,
    op: (o: Opening) => Promise<T>,
    first: Opening,
    signal?: AbortSignal,
    mayRetry?: () => boolean,
  ): Promise<T> {
    if (!(e instanceof DesChangedError) || (mayRetry && !mayRetry())) throw e;
    const next = await this.reopen(first, signal);
    try {
      return await op(next);
    } catch (e2) {
      if (e2 instanceof DesChangedError)
        throw new DesChangedError(`${this.source.key} changed again while being read`, { cause: e2 });
      throw e2;
    }
  }

  /** The opening after `stale`: one reopen, shared, under its own controller. */
  private reopen(stale: Opening, signal?: AbortSignal): Promise<Opening> {
    if (this.now !== stale) return Promise.resolve(this.now);
    let task = this.reopening;
    if (!task || task.cancelled) {
      const t = new SharedTask<Opening>(async (sig) => {
        // The cached tail and pages describe the old object: drop them before reading the new one.
        await this.cfg.cache?.purge();
        const next = await Opening.load(this.source, this.cfg, sig, true);
        const s = stale.fetcher.stats;
        this.retired.requests += s.requests;
        this.retired.bytes += s.bytes;
        this.now = next;
        return next;
      }, signal);
      task = t;
      this.reopening = t;
      const clear = (): void => {
        if (this.reopening === t) this.reopening = undefined;
      };
      t.promise.then(clear, clear);
    }
    return task.join(signal);
  }
}
