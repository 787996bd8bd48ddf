import { Readable, pipeline } from "node:stream";
import { openIndex } from "./archive-index.js";
import type { ArchiveIndex, Tail } from "./archive-index.js";
import { sliceWant } from "./coalesce.js";
import type { RangeWant } from "./coalesce.js";
import { decompressStream, decompressSync } from "../format/compression.js";
import {
  DesAbortedError,
  DesChangedError,
  DesChecksumError,
  DesClosedError,
  DesError,
  DesExternalError,
  DesFormatError,
  DesInvalidArgumentError,
  DesNotFoundError,
  DesUnsupportedError,
  throwIfAborted,
} from "../errors.js";
import { defaultExternalKey } from "../io/external.js";
import type { ExternalStore } from "../io/external.js";
import { Fetcher } from "./fetcher.js";
import type { IoStats } from "./fetcher.js";
import { DEFAULT_TAIL_SIZE, FLAG_EXTERNAL, HEADER_MAGIC, KNOWN_FLAGS, startsWith } from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { loadHasher, xxh64, xxh64Stream } from "../format/hash.js";
import { decodeMetaV1, decodeMetaV2 } from "../format/meta.js";
import type { MetaValue } from "../format/meta.js";
import { FileSource } from "../sources/file.js";
import type { RangeSource, ReadHints } from "../io/source.js";

export interface ReaderOptions {
  /** Bytes read from the end at open. Default 64 KiB. */
  tailSize?: number;
  /** Check data and meta checksums on every read (v2). Default true. */
  verify?: boolean;
  /** Coalescing and concurrency; defaults come from the source (`source.hints`). */
  maxGap?: number;
  maxSpan?: number;
  concurrency?: number;
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
  maxGap?: number;
  maxSpan?: number;
  concurrency?: number;
}

/** What `stat` reports of one entry. */
export interface EntryStat {
  readonly name: string;
  /** Original size in bytes. */
  readonly size: number;
  /** Bytes stored (after compression; in the external store for external entries). */
  readonly storedSize: number;
  /** Absolute offset of the stored bytes in the archive (0 for external and empty entries). */
  readonly offset: number;
  readonly flags: number;
  readonly compression: Compression | "unknown";
  readonly external: boolean;
  /** v2: the recorded key. v1: undefined until the meta is read (see `externalKeyOf`). */
  readonly externalKey: string | undefined;
  readonly metaLength: number;
}

export interface VerifyProblem {
  readonly name?: string;
  readonly page?: number;
  readonly code: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly formatVersion: 1 | 2;
  /** Records examined (v1 duplicates and v2 tombstones included). */
  readonly entries: number;
  /** Entries whose data was checked against a checksum (v2) or fully read (v1). */
  readonly dataChecked: number;
  readonly metaChecked: number;
  readonly pages: number;
  /** External entries not checked because no external store was configured. */
  readonly externalSkipped: number;
  readonly problems: readonly VerifyProblem[];
}

interface OpenState {
  readonly index: ArchiveIndex;
  readonly size: number;
  readonly fetcher: Fetcher;
}

const STREAM_WINDOW = 8 << 20;
const DEFAULT_MAX_ENTRY_BYTES = 2 ** 30;

/**
 * Reads a DES archive (v1 or v2) from any RangeSource. Opening reads the tail
 * once; lookups read at most one index page; batches are coalesced.
 */
export class DesReader {
  readonly source: RangeSource;
  private readonly opts: Required<Pick<ReaderOptions, "tailSize" | "verify" | "pageCacheBytes">> & ReaderOptions;
  private readonly hints: ReadHints;
  private state: OpenState;
  private closed = false;
  private readonly ownsSource: boolean;
  /** Counts across reopenings. */
  private readonly totals: IoStats = { requests: 0, bytes: 0 };

  private constructor(source: RangeSource, state: OpenState, hints: ReadHints, opts: DesReader["opts"], ownsSource: boolean) {
    this.source = source;
    this.state = state;
    this.hints = hints;
    this.opts = opts;
    this.ownsSource = ownsSource;
  }

  /** Opens an archive from a path or a RangeSource. */
  static async open(source: string | RangeSource, options: ReaderOptions = {}): Promise<DesReader> {
    const opts = {
      ...options,
      tailSize: options.tailSize ?? DEFAULT_TAIL_SIZE,
      verify: options.verify ?? true,
      pageCacheBytes: options.pageCacheBytes ?? 64 << 20,
    };
    if (!Number.isSafeInteger(opts.tailSize) || opts.tailSize < 256) throw new DesInvalidArgumentError("tailSize must be an integer >= 256");
    await loadHasher();
    const ownsSource = typeof source === "string";
    const src = typeof source === "string" ? await FileSource.open(source, { syncReads: options.syncReads ?? false }) : source;
    const hints: ReadHints = {
      maxGap: options.maxGap ?? src.hints.maxGap,
      maxSpan: options.maxSpan ?? src.hints.maxSpan,
      concurrency: options.concurrency ?? src.hints.concurrency,
    };
    try {
      const state = await DesReader.load(src, hints, opts);
      return new DesReader(src, state, hints, opts, ownsSource);
    } catch (e) {
      if (ownsSource) await src.close?.();
      throw e;
    }
  }

  private static async load(source: RangeSource, hints: ReadHints, opts: DesReader["opts"], signal?: AbortSignal): Promise<OpenState> {
    const fetcher = new Fetcher(source, hints);
    const { bytes, size } = await fetcher.readTail(opts.tailSize, signal);
    const tail: Tail = { bytes, start: size - bytes.length, size };
    const index = await openIndex(tail, fetcher, opts.pageCacheBytes, signal);
    return { index, size, fetcher };
  }

  get formatVersion(): 1 | 2 {
    return this.state.index.version;
  }

  /** The archive's size in bytes. */
  get size(): number {
    return this.state.size;
  }

  /** Index records: live entries for v1; for v2, as counted by the footer. */
  get entryCount(): number {
    return this.state.index.entryCount;
  }

  /** Requests and bytes this reader asked of its source (open included). */
  get ioStats(): IoStats {
    const s = this.state.fetcher.stats;
    return { requests: this.totals.requests + s.requests, bytes: this.totals.bytes + s.bytes };
  }

  /**
   * Runs an operation; if the source reports that the archive changed under
   * us, drops everything cached, reopens once and retries. A second change is
   * a DesChangedError.
   */
  private async run<T>(op: (s: OpenState) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) throw new DesClosedError();
    const before = this.state;
    try {
      return await op(before);
    } catch (e) {
      if (!(e instanceof DesChangedError)) throw e;
      await this.reopen(before, signal);
      try {
        return await op(this.state);
      } catch (e2) {
        if (e2 instanceof DesChangedError) throw new DesChangedError(`${this.source.key} changed again while being read`, { cause: e2 });
        throw e2;
      }
    }
  }

  private reopening: Promise<void> | undefined;

  private async reopen(stale: OpenState, signal?: AbortSignal): Promise<void> {
    if (this.state !== stale) return; // another caller already reopened
    this.reopening ??= (async () => {
      try {
        const next = await DesReader.load(this.source, this.hints, this.opts, signal);
        this.totals.requests += stale.fetcher.stats.requests;
        this.totals.bytes += stale.fetcher.stats.bytes;
        this.state = next;
      } finally {
        this.reopening = undefined;
      }
    })();
    await this.reopening;
  }

  private async records(s: OpenState, names: readonly string[], missing: "throw" | "skip", signal?: AbortSignal): Promise<EntryRecord[]> {
    const found = await s.index.lookupMany(names, signal);
    const out: EntryRecord[] = [];
    found.forEach((rec, i) => {
      if (rec) out.push(rec);
      else if (missing === "throw") throw new DesNotFoundError(names[i]!);
    });
    return out;
  }

  async has(name: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.run(async (s) => (await s.index.lookupMany([name], opts.signal))[0] !== undefined, opts.signal);
  }

  async stat(name: string, opts: { signal?: AbortSignal } = {}): Promise<EntryStat> {
    return this.run(async (s) => toStat((await this.records(s, [name], "throw", opts.signal))[0]!), opts.signal);
  }

  /** Live names: v1 in the order first added, v2 sorted by UTF-8 bytes. Reads only the index. */
  async list(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.run((s) => s.index.list(opts.signal), opts.signal);
  }

  async get(name: string, opts: ReadOptions = {}): Promise<Uint8Array> {
    const all = await this.getMany([name], opts);
    return all.get(name)!;
  }

  /** Reads many entries with coalesced, concurrent reads. Result keys follow the order of `names`. */
  async getMany(names: Iterable<string>, opts: ManyOptions = {}): Promise<Map<string, Uint8Array>> {
    const wanted = [...new Set(names)];
    const got = new Map<string, Uint8Array>();
    await this.readBodies(wanted, opts, (name, bytes) => got.set(name, bytes));
    if (got.size <= 1) return got;
    const ordered = new Map<string, Uint8Array>();
    for (const n of wanted) {
      const b = got.get(n);
      if (b) ordered.set(n, b);
    }
    return ordered;
  }

  /**
   * The streaming form of `getMany`: yields each entry as soon as the read
   * that holds it arrives. Lookups all happen before the first data read, so
   * a missing name fails before any data I/O. Leaving the loop early cancels
   * the reads still in flight.
   */
  async *iterMany(names: Iterable<string>, opts: ManyOptions = {}): AsyncGenerator<[string, Uint8Array]> {
    const wanted = [...new Set(names)];
    // Our own controller, following the caller's: leaving the loop early must cancel the reads.
    const stop = new AbortController();
    const follow = (): void => stop.abort(opts.signal?.reason);
    if (opts.signal?.aborted) follow();
    opts.signal?.addEventListener("abort", follow, { once: true });
    const signal = stop.signal;
    const ready: [string, Uint8Array][] = [];
    let wake: (() => void) | undefined;
    let outcome: { error: unknown } | "done" | undefined;
    const reading = this.readBodies(wanted, { ...opts, signal }, (name, bytes) => {
      ready.push([name, bytes]);
      wake?.();
    }).then(
      () => {
        outcome = "done";
        wake?.();
      },
      (error: unknown) => {
        outcome = { error };
        wake?.();
      },
    );
    try {
      for (let i = 0; ; ) {
        if (i < ready.length) {
          const item = ready[i]!;
          ready[i++] = undefined as unknown as [string, Uint8Array]; // let it go once yielded
          yield item;
          continue;
        }
        if (outcome === "done") return;
        if (outcome) throw outcome.error;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      opts.signal?.removeEventListener("abort", follow);
      if (!outcome) stop.abort(new DesAbortedError("the consumer stopped iterating"));
      await reading;
    }
  }

  /**
   * Looks up `wanted`, reads their bodies with coalesced reads and hands
   * each to `deliver` as it arrives: the one implementation behind `getMany`
   * and `iterMany`.
   */
  private async readBodies(wanted: readonly string[], opts: ManyOptions, deliver: (name: string, bytes: Uint8Array) => void): Promise<void> {
    const verify = opts.verify ?? this.opts.verify;
    const signal = opts.signal;
    // Data must be read from the same opening the records came from: after a
    // reopen, old offsets read from the new object would be wrong bytes.
    let st: OpenState = this.state;
    let lookups = 0;
    const recs = await this.run((s) => {
      st = s;
      lookups++;
      return this.records(s, wanted, opts.missing ?? "throw", signal);
    }, signal);
    for (const r of recs) this.checkInMemory(r);

    const external: EntryRecord[] = [];
    const split = (list: readonly EntryRecord[]): RangeWant<EntryRecord>[] => {
      const wants: RangeWant<EntryRecord>[] = [];
      for (const r of list) {
        if (r.flags & FLAG_EXTERNAL) external.push(r);
        else if (r.storedSize === 0) deliver(r.name, new Uint8Array(0));
        else wants.push({ offset: r.dataOffset, length: r.storedSize, item: r });
      }
      return wants;
    };
    let pending = split(recs);
    const hints = hintsOf(opts);
    // One reopen per call: if the lookups already reopened, a change now is the second.
    for (let attempt = lookups > 1 ? 1 : 0; pending.length > 0; attempt++) {
      const done = new Set<EntryRecord>();
      try {
        await st.fetcher.readGroups(pending, signal, hints, (group, bytes) => {
          for (const w of group.wants) {
            deliver(w.item.name, decodeBody(w.item, sliceWant(group, bytes, w), verify));
            done.add(w.item);
          }
        });
        pending = [];
      } catch (e) {
        if (!(e instanceof DesChangedError)) throw e;
        if (attempt > 0) throw new DesChangedError(`${this.source.key} changed again while being read`, { cause: e });
        // A change detected mid-batch: reopen and read what is left from the new opening.
        await this.reopen(st, signal);
        st = this.state;
        const left = pending.filter((w) => !done.has(w.item)).map((w) => w.item.name);
        const fresh = await this.records(st, left, opts.missing ?? "throw", signal);
        for (const r of fresh) this.checkInMemory(r);
        pending = split(fresh);
      }
    }
    for (const r of external) deliver(r.name, await this.getExternal(r, verify, signal));
  }

  /** The key of an external entry: v2 records it; v1 keeps it in the meta, else the reader's convention. */
  async externalKeyOf(name: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const rec = (await this.run((s) => this.records(s, [name], "throw", opts.signal), opts.signal))[0]!;
    if (!(rec.flags & FLAG_EXTERNAL)) throw new DesInvalidArgumentError(`${JSON.stringify(name)} is not an external entry`);
    return this.resolveExternalKey(rec, opts.signal);
  }

  private async resolveExternalKey(rec: EntryRecord, signal?: AbortSignal): Promise<string> {
    if (rec.externalKey !== undefined) return rec.externalKey;
    const meta = await this.readMeta(rec, true, signal);
    if (meta && typeof meta === "object" && !Array.isArray(meta) && !(meta instanceof Uint8Array)) {
      const key = (meta as Record<string, unknown>)["external_key"];
      if (typeof key === "string" && key.length > 0) return key;
    }
    const dir = this.opts.archiveKey?.includes("/") ? this.opts.archiveKey.slice(0, this.opts.archiveKey.lastIndexOf("/")) : undefined;
    return defaultExternalKey(rec.name, dir);
  }

  private async getExternal(rec: EntryRecord, verify: boolean, signal?: AbortSignal): Promise<Uint8Array> {
    const store = this.opts.externalStore;
    if (!store) throw new DesExternalError(`${JSON.stringify(rec.name)} is external and no externalStore was given`);
    const key = await this.resolveExternalKey(rec, signal);
    const body = await store.get(key, signal);
    if (body.length !== rec.storedSize) {
      throw new DesExternalError(`external body ${JSON.stringify(key)} has ${body.length} bytes, index says ${rec.storedSize}`);
    }
    return decodeBody(rec, body, verify);
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
    const wanted = [...new Set(names)];
    const verify = opts.verify ?? this.opts.verify;
    const signal = opts.signal;
    return this.run(async (s) => {
      const recs = await this.records(s, wanted, opts.missing ?? "throw", signal);
      // An unknown flag may change what the meta means too: refused like the body.
      for (const r of recs) checkFlags(r);
      const got = new Map<string, MetaValue | undefined>();
      const wants: RangeWant<EntryRecord>[] = [];
      for (const r of recs) {
        if (r.metaLength === 0) got.set(r.name, undefined);
        else wants.push({ offset: r.metaOffset, length: r.metaLength, item: r });
      }
      await s.fetcher.readGroups(wants, signal, hintsOf(opts), (group, bytes) => {
        for (const w of group.wants) got.set(w.item.name, decodeMeta(s.index.version, w.item, sliceWant(group, bytes, w), verify, opts.maps));
      });
      const ordered = new Map<string, MetaValue | undefined>();
      for (const r of recs) ordered.set(r.name, got.get(r.name));
      return ordered;
    }, signal);
  }

  private async readMeta(rec: EntryRecord, verify: boolean, signal?: AbortSignal): Promise<MetaValue | undefined> {
    return this.run(async (s) => {
      if (rec.metaLength === 0) return undefined;
      const bytes = await s.fetcher.read(rec.metaOffset, rec.metaLength, signal);
      return decodeMeta(s.index.version, rec, bytes, verify);
    }, signal);
  }

  /**
   * Streams one entry in 8 MiB windows with two reads in flight, so memory
   * stays bounded for big entries. The checksum is computed as bytes pass;
   * a mismatch fails the stream at its end (after the last chunk).
   */
  stream(name: string, opts: ReadOptions = {}): Readable {
    const verify = opts.verify ?? this.opts.verify;
    const signal = opts.signal;
    const self = this;
    async function* raw(rec: EntryRecord, fetcher: Fetcher): AsyncGenerator<Uint8Array> {
      if (rec.flags & FLAG_EXTERNAL) {
        const store = self.opts.externalStore;
        if (!store) throw new DesExternalError(`${JSON.stringify(rec.name)} is external and no externalStore was given`);
        yield* store.stream(await self.resolveExternalKey(rec, signal), signal);
        return;
      }
      const end = rec.dataOffset + rec.storedSize;
      let next = rec.dataOffset;
      const window = (): Promise<Uint8Array> | undefined => {
        if (next >= end) return undefined;
        const len = Math.min(STREAM_WINDOW, end - next);
        const p = fetcher.read(next, len, signal);
        next += len;
        return p;
      };
      const queue: Promise<Uint8Array>[] = [];
      for (let i = 0; i < 2; i++) {
        const p = window();
        if (p) queue.push(p);
      }
      while (queue.length > 0) {
        const chunk = await queue.shift()!;
        const p = window();
        if (p) queue.push(p);
        yield chunk;
      }
    }
    async function* checked(): AsyncGenerator<Uint8Array> {
      let st: OpenState = self.state;
      const rec = (
        await self.run((s) => {
          st = s;
          return self.records(s, [name], "throw", signal);
        }, signal)
      )[0]!;
      checkReadable(rec);
      if (rec.storedSize === 0) return;
      const hash = verify && rec.dataHash !== undefined ? xxh64Stream() : undefined;
      let seen = 0;
      const counted = async function* (): AsyncGenerator<Uint8Array> {
        for await (const chunk of raw(rec, st.fetcher)) {
          throwIfAborted(signal);
          seen += chunk.length;
          if (seen > rec.storedSize) throw new DesFormatError(`${JSON.stringify(rec.name)} is longer than its index says`);
          hash?.update(chunk);
          yield chunk;
        }
        if (seen !== rec.storedSize) throw new DesFormatError(`${JSON.stringify(rec.name)} ended after ${seen} of ${rec.storedSize} bytes`);
        if (hash && hash.digest() !== rec.dataHash) throw new DesChecksumError({ kind: "data", name: rec.name });
      };
      if (rec.compression === "none") {
        yield* counted();
        return;
      }
      let out = 0;
      // pipeline, not pipe: pipe() does not forward a failure of `counted` (checksum,
      // length) to the inflater, which then waits forever while the error goes unhandled.
      const inflated = pipeline(Readable.from(counted()), decompressStream(rec.compression!), () => undefined);
      try {
        for await (const chunk of inflated) {
          out += (chunk as Uint8Array).length;
          if (out > rec.size) {
            inflated.destroy();
            throw new DesFormatError(`${JSON.stringify(rec.name)} inflates past its size ${rec.size}`);
          }
          yield chunk as Uint8Array;
        }
      } catch (e) {
        if (e instanceof DesError) throw e;
        // zlib's own errors (bad header, bad block) are plain Errors: corrupt stored bytes.
        throw new DesFormatError(`entry ${JSON.stringify(rec.name)}: ${rec.compression} data does not inflate: ${(e as Error).message}`, { cause: e });
      } finally {
        inflated.destroy();
      }
      if (out !== rec.size) throw new DesFormatError(`${JSON.stringify(rec.name)} inflated to ${out} bytes, index says ${rec.size}`);
    }
    return Readable.from(checked(), { objectMode: false });
  }

  /**
   * Reads everything and checks every checksum: footer, root, pages, and the
   * data and meta of every entry (v2); for v1, the structure, every meta's
   * JSON and every data range. Returns a report rather than throwing.
   */
  async verify(opts: { signal?: AbortSignal } = {}): Promise<VerifyReport> {
    if (this.closed) throw new DesClosedError();
    const s = this.state;
    const signal = opts.signal;
    const problems: VerifyProblem[] = [];
    const report = (name: string | undefined, page: number | undefined, e: unknown): void => {
      const err = e instanceof Error ? e : new Error(String(e));
      problems.push({
        ...(name !== undefined ? { name } : {}),
        ...(page !== undefined ? { page } : {}),
        code: err instanceof DesError ? err.code : "DES_IO",
        message: err.message,
      });
    };
    const head = await s.fetcher.read(0, Math.min(16, s.size), signal);
    if (!startsWith(head, 0, HEADER_MAGIC) || head[8] !== s.index.version) {
      report(undefined, undefined, new DesFormatError("header magic or version does not match the footer"));
    }
    const recs: EntryRecord[] = [];
    for await (const r of s.index.allRecords(signal, (page, e) => report(undefined, page, e))) recs.push(r);
    const badPages = problems.some((p) => p.page !== undefined);
    if (!badPages && s.index.version === 2 && recs.length !== s.index.entryCount) {
      report(undefined, undefined, new DesFormatError(`the footer counts ${s.index.entryCount} records, the pages hold ${recs.length}`));
    }
    let dataChecked = 0;
    let metaChecked = 0;
    let externalSkipped = 0;
    const dataWants: RangeWant<EntryRecord>[] = [];
    const metaWants: RangeWant<EntryRecord>[] = [];
    const refused = new Set<EntryRecord>();
    // Entries too big to hold in memory are checked by streaming them instead.
    const streamed: EntryRecord[] = [];
    const limit = this.opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    for (const r of recs) {
      try {
        checkReadable(r); // what get() refuses, verify() reports
      } catch (e) {
        report(r.name, undefined, e);
        refused.add(r);
        continue;
      }
      if (r.size > limit || r.storedSize > limit) {
        streamed.push(r);
        if (r.metaLength > 0) metaWants.push({ offset: r.metaOffset, length: r.metaLength, item: r });
        continue;
      }
      if (r.storedSize > 0 && !(r.flags & FLAG_EXTERNAL)) dataWants.push({ offset: r.dataOffset, length: r.storedSize, item: r });
      if (r.metaLength > 0) metaWants.push({ offset: r.metaOffset, length: r.metaLength, item: r });
    }
    const bulk: Partial<ReadHints> = { maxGap: 1 << 20, maxSpan: 8 << 20 };
    await s.fetcher.readGroups(dataWants, signal, bulk, (group, bytes) => {
      for (const w of group.wants) {
        try {
          decodeBody(w.item, sliceWant(group, bytes, w), true);
          dataChecked++;
        } catch (e) {
          report(w.item.name, undefined, e);
        }
      }
    });
    await s.fetcher.readGroups(metaWants, signal, bulk, (group, bytes) => {
      for (const w of group.wants) {
        try {
          decodeMeta(s.index.version, w.item, sliceWant(group, bytes, w), true);
          metaChecked++;
        } catch (e) {
          report(w.item.name, undefined, e);
        }
      }
    });
    const big = new Set(streamed);
    for (const r of recs) {
      if (!(r.flags & FLAG_EXTERNAL) || refused.has(r)) continue; // refused ones are reported once, above
      if (!this.opts.externalStore) {
        externalSkipped++;
        continue;
      }
      if (big.has(r)) continue;
      try {
        await this.getExternal(r, true, signal);
        dataChecked++;
      } catch (e) {
        report(r.name, undefined, e);
      }
    }
    for (const r of streamed) {
      if (r.flags & FLAG_EXTERNAL && !this.opts.externalStore) continue; // counted as skipped above
      try {
        for await (const chunk of this.stream(r.name, { signal })) void chunk;
        dataChecked++;
      } catch (e) {
        report(r.name, undefined, e);
      }
    }
    return {
      ok: problems.length === 0,
      formatVersion: s.index.version,
      entries: recs.length,
      dataChecked,
      metaChecked,
      pages: s.index.pageCount,
      externalSkipped,
      problems,
    };
  }

  /** What must hold before an entry's body is read into memory. */
  private checkInMemory(rec: EntryRecord): void {
    checkReadable(rec);
    const limit = this.opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    if (rec.size > limit) {
      throw new DesInvalidArgumentError(`entry ${JSON.stringify(rec.name)} is ${rec.size} bytes, above maxEntryBytes (${limit}): read it with stream()`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsSource) await this.source.close?.();
  }
}

/** Per-call overrides of the reader's coalescing. */
function hintsOf(opts: ManyOptions): Partial<ReadHints> {
  const h: { -readonly [K in keyof ReadHints]?: number } = {};
  if (opts.maxGap !== undefined) h.maxGap = opts.maxGap;
  if (opts.maxSpan !== undefined) h.maxSpan = opts.maxSpan;
  if (opts.concurrency !== undefined) h.concurrency = opts.concurrency;
  return h;
}

function checkFlags(rec: EntryRecord): void {
  if (rec.flags & ~KNOWN_FLAGS) {
    throw new DesUnsupportedError(`entry ${JSON.stringify(rec.name)} has flags 0x${rec.flags.toString(16)} this reader does not support`);
  }
}

function checkReadable(rec: EntryRecord): void {
  checkFlags(rec);
  if (rec.compression === undefined) throw new DesUnsupportedError(`entry ${JSON.stringify(rec.name)} uses an unknown compression codec`);
  // Zero stored bytes read as empty without I/O, so only a record of size 0 may have none.
  if (rec.storedSize === 0 && rec.size !== 0) {
    throw new DesFormatError(`entry ${JSON.stringify(rec.name)} has size ${rec.size} but no stored bytes`);
  }
}

/** Checks the stored bytes against their checksum, then inflates them. */
function decodeBody(rec: EntryRecord, stored: Uint8Array, verify: boolean): Uint8Array {
  if (verify && rec.dataHash !== undefined && xxh64(stored) !== rec.dataHash) {
    throw new DesChecksumError({ kind: "data", name: rec.name });
  }
  return decompressSync(rec.compression ?? "none", stored, rec.size, rec.name);
}

function decodeMeta(version: 1 | 2, rec: EntryRecord, bytes: Uint8Array, verify: boolean, maps = false): MetaValue {
  if (version === 1) return decodeMetaV1(bytes, rec.name, { maps });
  if (verify && xxh64(bytes) !== rec.metaHash) {
    throw new DesChecksumError({ kind: "meta", name: rec.name });
  }
  return decodeMetaV2(bytes, rec.name);
}

function toStat(r: EntryRecord): EntryStat {
  return {
    name: r.name,
    size: r.size,
    storedSize: r.storedSize,
    offset: r.dataOffset,
    flags: r.flags,
    compression: r.compression ?? "unknown",
    external: (r.flags & FLAG_EXTERNAL) !== 0,
    externalKey: r.externalKey,
    metaLength: r.metaLength,
  };
}
