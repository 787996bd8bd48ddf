import { Readable } from "node:stream";
import { DesClosedError, DesInvalidArgumentError, DesIoError, DesNotFoundError, throwIfAborted } from "../errors.js";
import type { MetaValue } from "../format/meta.js";
import type { EntryRecord } from "../format/record.js";
import type { RangeSource } from "../io/source.js";
import { FileSource } from "../sources/file.js";
import { deliveries } from "./deliveries.js";
import { checkInMemory, declaredBytes, lookup, readBodies, readMetaOf, readMetas } from "./batch.js";
import type { BatchConfig, BatchPlan } from "./batch.js";
import { CacheLink } from "./cache-link.js";
import { ContentCache } from "./content-cache.js";
import { decodeBody, isExternal, toStat } from "./entry.js";
import type { EntryStat } from "./entry.js";
import { fetchExternal, resolveExternalKey } from "./external.js";
import type { IoStats } from "./fetcher.js";
import type { CostModel } from "../io/cost.js";
import { Opening, Openings } from "./opening.js";
import { describeOpening, generationSource, listGenerations, recordedGeneration, spaceUsage } from "./generations.js";
import type { GenerationInfo, SpaceUsage } from "./generations.js";
import type { OpeningConfig } from "./opening.js";
import {
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_ENTRY_BYTES,
  openingConfig,
  checkInt,
  checkManyOptions,
  checkReadOptions,
  checkReaderOptions,
  readerOptionsToCheck,
  hintsOf,
} from "./options.js";
import type { ManyOptions, ReadOptions, ReaderOptions } from "./options.js";
import { entryChunks } from "./stream.js";
import type { VerifyReport } from "./verify.js";
import { warmOpening } from "./warm.js";
import type { WarmReport } from "./warm.js";

export type { ReaderOptions, ReadOptions, ManyOptions } from "./options.js";
export type { EntryStat } from "./entry.js";
export type { VerifyProblem, VerifyReport } from "./verify.js";
export type { WarmReport } from "./warm.js";

/** The options of a call given none: nothing to check. */
const NO_OPTIONS: ReadOptions = Object.freeze({});

/**
 * Reads a DES archive (v1 or v2) from any RangeSource. Opening reads the tail
 * once (or takes it from the index cache); lookups read at most one index
 * page; batches are coalesced; every result comes from one opening.
 */
export class DesReader {
  declare readonly source: RangeSource;
  declare private readonly openings: Openings;
  declare private readonly verifyDefault: boolean;
  declare private readonly maxBatchBytes: number;
  declare private readonly batch: BatchConfig;
  declare private readonly link: CacheLink | undefined;
  declare private readonly ownsSource: boolean;
  declare private closed: boolean;

  private constructor(
    source: RangeSource,
    openings: Openings,
    opts: ReaderOptions,
    link: CacheLink | undefined,
    ownsSource: boolean,
  ) {
    this.source = source;
    this.openings = openings;
    this.closed = false;
    this.link = link;
    this.ownsSource = ownsSource;
    this.verifyDefault = opts.verify ?? true;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.batch = {
      maxEntryBytes: opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES,
      external: {
        store: opts.externalStore,
        archiveKey: opts.archiveKey,
        externalPrefix: opts.externalPrefix,
        allowOutsidePrefix: opts.allowExternalKeysOutsidePrefix ?? false,
      },
      content: opts.contentCache ? new ContentCache(opts.contentCache) : undefined,
    };
  }

  /** Opens an archive from a path or a RangeSource. */
  static async open(source: string | RangeSource, options: ReaderOptions = {}): Promise<DesReader> {
    if (readerOptionsToCheck(options)) checkReaderOptions(options);
    const ownsSource = typeof source === "string";
    const src =
      typeof source === "string" ? await FileSource.open(source, { syncReads: options.syncReads ?? false }) : source;
    try {
      let link = options.cache ? new CacheLink(options.cache, src.key, options.cacheTtlMs) : undefined;
      let cfg: OpeningConfig = openingConfig(src.hints, options, link);
      let first = await Opening.load(src, cfg);
      let readFrom: RangeSource = src;
      if (options.generation !== undefined) {
        // An older generation is a prefix of the archive, read (and cached) as an archive of its own.
        readFrom = await generationSource(first, options.generation);
        if (readFrom !== src) {
          link = options.cache ? new CacheLink(options.cache, readFrom.key, options.cacheTtlMs) : undefined;
          cfg = { ...cfg, cache: link };
          first = await Opening.load(readFrom, cfg);
        }
      }
      return new DesReader(src, new Openings(readFrom, cfg, first), options, link, ownsSource);
    } catch (e) {
      if (ownsSource) await src.close?.();
      throw e;
    }
  }

  get formatVersion(): 1 | 2 {
    return this.openings.current.index.version;
  }

  /** The archive's size in bytes. */
  get size(): number {
    return this.openings.current.size;
  }

  /**
   * The generation this reader reads, 1 for an archive never appended to
   * (spec 3.8); 0 only for an appended archive whose writer did not record
   * it (`generations()` counts those).
   */
  get generation(): number {
    return recordedGeneration(this.openings.current);
  }

  /** Every generation up to the one read, oldest first: offsets, record counts, sizes. */
  generations(opts: { signal?: AbortSignal } = {}): Promise<GenerationInfo[]> {
    return this.run(async (o) => listGenerations(await describeOpening(o, opts.signal), opts.signal), opts.signal);
  }

  /** Live vs dead bytes (reads the whole index): what `repack` would reclaim. */
  spaceUsage(opts: { signal?: AbortSignal } = {}): Promise<SpaceUsage> {
    return this.run(async (o) => spaceUsage(await describeOpening(o, opts.signal), opts.signal), opts.signal);
  }

  /** v1: live entries. v2: the footer's entry_count (tombstones included). */
  get entryCount(): number {
    return this.openings.current.index.entryCount;
  }

  /** The cost model a batch with these options is planned by, learned fields included; undefined: the fixed rule. */
  costModel(opts: Pick<ManyOptions, "cost" | "concurrency" | "maxGap" | "maxSpan"> = {}): CostModel | undefined {
    return this.openings.current.fetcher.costModel(hintsOf(opts));
  }

  /** Requests and bytes this reader asked of its source (open and reopenings included). */
  get ioStats(): IoStats {
    return this.openings.stats;
  }

  private run<T>(op: (o: Opening) => Promise<T>, signal?: AbortSignal, mayRetry?: () => boolean): Promise<T> {
    if (this.closed) return Promise.reject(new DesClosedError());
    return this.openings.run(op, signal, mayRetry);
  }

  /** The record of `name` in opening `o`: no I/O when its page is decoded; null when absent. */
  private async find(o: Opening, name: string, signal?: AbortSignal): Promise<EntryRecord | null> {
    throwIfAborted(signal);
    const rec = o.index.peek(name);
    return rec !== undefined ? rec : o.index.lookupOne(name, signal);
  }

  async has(name: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.run(async (o) => (await this.find(o, name, opts.signal)) !== null, opts.signal);
  }

  async stat(name: string, opts: { signal?: AbortSignal } = {}): Promise<EntryStat> {
    return this.run(async (o) => {
      const rec = await this.find(o, name, opts.signal);
      if (rec === null) throw new DesNotFoundError(name);
      return toStat(rec);
    }, opts.signal);
  }

  /** Live names: v1 in the order first added, v2 sorted by UTF-8 bytes. Reads only the index. */
  async list(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.run((o) => o.index.list(opts.signal), opts.signal);
  }

  /**
   * One entry. The same as `getMany([name]).get(name)`, on a path of its own:
   * a server may hold a hundred thousand of these pending at once, so a
   * pending `get` costs a lookup (no I/O when its page is decoded), one
   * shared read and no batch machinery.
   */
  /**
   * Every live entry's stat, streamed a page at a time: each index page is
   * read once (in coalesced rounds of 64 pages) and only one round is held,
   * so walking a huge archive (`list --long`) costs one pass over its index
   * whatever the page cache size. Order: v1 as `list()`; v2 page by page,
   * each page in name (UTF-8 byte) order (pages are hash buckets, so the
   * whole walk is not globally sorted: sort `list()` for that).
   */
  async *entries(opts: { signal?: AbortSignal } = {}): AsyncGenerator<EntryStat> {
    if (this.closed) throw new DesClosedError();
    const o = this.openings.current;
    for await (const page of o.index.recordPages(opts.signal)) for (const r of page) yield toStat(r);
  }

  get(name: string, opts: ReadOptions = NO_OPTIONS): Promise<Uint8Array> {
    if (opts !== NO_OPTIONS) {
      try {
        checkReadOptions(opts);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const verify = opts.verify ?? this.verifyDefault;
    const signal = opts.signal;
    return this.run(async (o) => {
      // Inline rather than `find`: one async frame less per pending get.
      throwIfAborted(signal); // what follows may read without a promise
      let rec = o.index.peek(name);
      if (rec === undefined) rec = await o.index.lookupOne(name, signal);
      if (rec === null) throw new DesNotFoundError(name);
      checkInMemory(rec, this.batch.maxEntryBytes);
      if (isExternal(rec)) {
        const r = rec;
        const key = await resolveExternalKey(r, this.batch.external, () => readMetaOf(o, r, true, signal));
        return fetchExternal(r, key, this.batch.external, verify, signal);
      }
      if (rec.storedSize === 0) return new Uint8Array(0);
      const content = this.batch.content;
      const hot = content?.get(o, rec);
      if (hot) return hot;
      const stored =
        o.fetcher.readSync(rec.dataOffset, rec.storedSize) ??
        (await o.fetcher.read(rec.dataOffset, rec.storedSize, signal));
      const body = decodeBody(rec, stored, verify);
      if (verify) content?.set(o, rec, body);
      return body;
    }, signal);
  }

  private plan(opts: ManyOptions, signal: AbortSignal | undefined, drained?: () => Promise<void>): BatchPlan {
    return {
      verify: opts.verify ?? this.verifyDefault,
      ...(opts.maps ? { maps: true } : {}),
      hints: hintsOf(opts),
      budget: opts.maxBatchBytes ?? this.maxBatchBytes,
      signal,
      ...(drained ? { drained } : {}),
    };
  }

  /**
   * Reads many entries with coalesced, concurrent reads. Result keys follow
   * the order of `names`. Every entry comes from one opening of the archive:
   * if it changes mid-batch, the whole batch is read again from the new one.
   * A batch whose stated sizes add up to more than `maxBatchBytes` is refused
   * before any data is read (use `iterMany`). Small bodies of one batch may
   * share a 64 KiB ArrayBuffer: copy a body (`body.slice()`) to transfer it.
   */
  async getMany(names: Iterable<string>, opts: ManyOptions = {}): Promise<Map<string, Uint8Array>> {
    checkManyOptions(opts);
    const wanted = [...new Set(names)];
    const plan = this.plan(opts, opts.signal);
    return this.run(async (o) => {
      const recs = await lookup(o, wanted, opts.missing ?? "throw", opts.signal, plan.hints);
      const total = declaredBytes(recs);
      if (recs.length > 1 && total > plan.budget) {
        throw new DesInvalidArgumentError(
          `the batch holds ${total} bytes, above maxBatchBytes (${plan.budget}): read it with iterMany()`,
        );
      }
      const got = new Map<string, Uint8Array>();
      await readBodies(o, recs, this.batch, plan, (name, bytes) => got.set(name, bytes));
      if (got.size <= 1) return got;
      const ordered = new Map<string, Uint8Array>();
      for (const n of wanted) {
        const b = got.get(n);
        if (b) ordered.set(n, b);
      }
      return ordered;
    }, opts.signal);
  }

  /**
   * The streaming form of `getMany`: yields each entry as soon as the read
   * that holds it arrives, holding at most `maxBatchBytes` of decoded bytes
   * (reads wait for the consumer). Lookups all happen before the first data
   * read, so a missing name fails before any data I/O. Leaving the loop early
   * cancels the reads still in flight. A change of the archive before the
   * first entry was yielded restarts the batch on the new opening; after
   * that it is a DesChangedError (entries of two versions are never mixed;
   * bodies may share a buffer, as with `getMany`).
   */
  async *iterMany(names: Iterable<string>, opts: ManyOptions = {}): AsyncGenerator<[string, Uint8Array]> {
    checkManyOptions(opts);
    const wanted = [...new Set(names)];
    yield* deliveries(opts.signal, (deliver, drained, signal, mayRetry) =>
      this.run(
        async (o) => {
          const plan = this.plan(opts, signal, drained);
          const recs = await lookup(o, wanted, opts.missing ?? "throw", signal, plan.hints);
          await readBodies(o, recs, this.batch, plan, deliver);
        },
        signal,
        mayRetry,
      ),
    );
  }

  /** The key of an external entry: v2 records it; v1 keeps it in the meta, else the reader's convention. */
  async externalKeyOf(name: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return this.run(async (o) => {
      const rec = (await lookup(o, [name], "throw", opts.signal))[0]!;
      if (!isExternal(rec)) throw new DesInvalidArgumentError(`${JSON.stringify(name)} is not an external entry`);
      return resolveExternalKey(rec, this.batch.external, () => readMetaOf(o, rec, true, opts.signal));
    }, opts.signal);
  }

  async getMeta(name: string, opts: ReadOptions = {}): Promise<MetaValue | undefined> {
    const all = await this.getMetaMany([name], opts);
    return all.get(name);
  }

  /**
   * Meta of many entries, coalesced like `getMany`. v2 entries written
   * without meta map to `undefined`.
   */
  async getMetaMany(names: Iterable<string>, opts: ManyOptions = {}): Promise<Map<string, MetaValue | undefined>> {
    checkManyOptions(opts);
    const wanted = [...new Set(names)];
    const plan = this.plan(opts, opts.signal);
    return this.run(
      async (o) => readMetas(o, await lookup(o, wanted, opts.missing ?? "throw", opts.signal, plan.hints), plan),
      opts.signal,
    );
  }

  /**
   * Streams one entry in 8 MiB windows with two reads in flight, so memory
   * stays bounded for big entries. The checksum is computed as bytes pass;
   * a mismatch fails the stream at its end (after the last chunk).
   */
  stream(name: string, opts: ReadOptions = {}): Readable {
    const verify = opts.verify ?? this.verifyDefault;
    const signal = opts.signal;
    const external = this.batch.external;
    const found = (): Promise<{ opening: Opening; rec: EntryRecord }> =>
      this.run(async (o) => ({ opening: o, rec: (await lookup(o, [name], "throw", signal))[0]! }), signal);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      const { opening, rec } = await found();
      yield* entryChunks(opening, rec, external, verify, signal);
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /**
   * Reads everything and checks every checksum: footer, root, pages, and the
   * data and meta of every entry (v2); for v1, the structure, every meta's
   * JSON and every data range. Returns a report rather than throwing.
   */
  async verify(opts: { signal?: AbortSignal } = {}): Promise<VerifyReport> {
    if (this.closed) throw new DesClosedError();
    // Loaded on first use: a reader that only reads entries (a Lambda handler) never parses it.
    const { verifyOpening } = await import("./verify.js").catch((e: unknown) => {
      throw new DesIoError(
        `cannot load des-pack's verify module (an incomplete install or bundle?): ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    });
    return verifyOpening(this.openings.current, this.batch, opts.signal);
  }

  /**
   * Fetches the tail and every index range (v1: the index; v2: every page)
   * in coalesced reads and stores them in the reader's cache, so that later
   * opens anywhere the cache reaches make no request for the index.
   */
  async warm(opts: { signal?: AbortSignal; batchPages?: number } = {}): Promise<WarmReport> {
    const link = this.link;
    if (!link) throw new DesInvalidArgumentError("warm() needs a reader opened with a cache");
    checkInt("batchPages", opts.batchPages, 1);
    const per = opts.batchPages ?? 1024;
    return this.run((o) => warmOpening(o, link, per, opts.signal), opts.signal);
  }

  /** Drops everything the cache holds for this archive (every version); returns how many keys went. */
  async purge(): Promise<number> {
    return this.link ? this.link.purge() : 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.openings.closed = true;
    await this.link?.flush();
    if (this.ownsSource) await this.source.close?.();
  }
}
