import fs from "node:fs";
import path from "node:path";
import { DesClosedError, DesInvalidArgumentError, DesIoError, DesNotFoundError } from "../errors.js";
import { loadHasher } from "../format/hash.js";
import { decodeMetaV2, encodeMetaV2, loadMetaCodec } from "../format/meta.js";
import type { MetaValue } from "../format/meta.js";
import type { DesReader } from "../read/reader.js";
import { parseName } from "../naming/name.js";
import type { ParsedName } from "../naming/name.js";
import { shardFromName } from "../naming/shard.js";
import { SnowflakeNameGenerator } from "../naming/snowflake.js";
import type { NextOptions } from "../naming/snowflake.js";
import { compactParts } from "./compact.js";
import { PartFinder } from "./finder.js";
import { Journal } from "./journal.js";
import { syncDir } from "../io/local-files.js";
import type { JournalRecord } from "./journal.js";
import { readManyJournaled, readManySealed } from "./many.js";
import { listDay, nameOfDay } from "./day.js";
import { journalName, recoverJournals, removeJournal } from "./recover.js";
import type { ShardLayout } from "./layout.js";
import type { DailyStoreOptions, StorePutOptions, StoreStats } from "./types.js";
import { describeHolder, takeLockFile } from "../io/local-files.js";
import type { LockFile } from "../io/local-files.js";
import type { PartBackend } from "./parts.js";
import { checkPutDay, hex2, resolveOptions } from "./options.js";
import { sealRecords } from "./seal.js";

export type { DailyStoreOptions, StorePutOptions, StoreStats } from "./types.js";

interface Local {
  readonly journal: Journal;
  readonly rec: JournalRecord;
}

/** Record bytes besides the body: framing, checksum, ms, a name of typical length. */
const name0Overhead = 64;

/**
 * A durable store of blobs by Snowflake name, in daily sharded DES parts
 * (see docs/store.md). `put` resolves once the blob is on disk (group
 * commit), `get` finds a blob from its name alone.
 */
export class DailyShardedDesStore {
  readonly nodeId: number;
  readonly shardBits: number;
  readonly layout: ShardLayout;
  readonly url: string;
  private readonly local = new Map<string, Local>();
  private readonly seals = new Set<Promise<void>>();
  private sealChain: Promise<void> = Promise.resolve();
  private rotating: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set when close() starts: puts from then on (and those still waiting) fail with DesClosedError. */
  private closing: Promise<void> | undefined;
  private failure: unknown;
  private sealFailure: unknown;
  private puts = 0;
  private commits = 0;
  private sealedJournals = 0;
  private sealedParts = 0;
  private peakQueued = 0;
  /** Journals rotated out and not yet sealed (their commits count in stats). */
  private readonly unsealed = new Set<Journal>();

  private constructor(
    opts: DailyStoreOptions,
    private readonly backend: PartBackend,
    private readonly finder: PartFinder,
    private readonly gen: SnowflakeNameGenerator,
    private readonly journalDir: string,
    private readonly lock: LockFile,
    private active: Journal,
    private readonly limits: { maxBytes: number; maxEntries: number; maxAgeMs: number; maxQueuedBytes: number },
  ) {
    this.nodeId = gen.nodeId;
    this.shardBits = opts.shardBits ?? 8;
    this.layout = opts.layout ?? "hex";
    this.url = backend.url;
  }

  static async open(opts: DailyStoreOptions): Promise<DailyShardedDesStore> {
    const { nodeId, bits, wrapBits, layout, limits, backend, spool } = resolveOptions(opts);
    const journalDir = path.join(spool, `n${hex2(nodeId)}`);
    try {
      await fs.promises.mkdir(journalDir, { recursive: true });
    } catch (e) {
      throw new DesIoError(`cannot create the journal folder ${journalDir}: ${(e as Error).message}`, { cause: e });
    }
    await Promise.all([loadHasher(), loadMetaCodec()]);
    const lockPath = path.join(spool, `n${hex2(nodeId)}.lock`);
    const lock = takeLockFile(
      lockPath,
      (holder) =>
        `node ${nodeId} of the store at ${backend.url} is locked by ${describeHolder(holder)} (lock file ${lockPath}); two stores with the same node id cannot share a location`,
    );
    const opened: Journal[] = [];
    try {
      await backend.recover();
      const { recovered, watermark, seq } = await recoverJournals(journalDir, nodeId, opened);
      const gen = new SnowflakeNameGenerator({
        nodeId,
        prefix: opts.prefix ?? "DES",
        wrapBits,
        clock: opts.clock,
        timeZone: opts.timeZone,
        day: opts.day,
        after: watermark,
      });
      const active = await Journal.create(
        path.join(journalDir, journalName(seq + 1)),
        nodeId,
        seq + 1,
        watermark,
        limits.maxQueuedBytes,
      );
      opened.push(active);
      const finder = new PartFinder(backend, bits, layout, opts.listTtlMs ?? 1000, opts.maxOpenParts ?? 512);
      const store = new DailyShardedDesStore(opts, backend, finder, gen, journalDir, lock, active, limits);
      for (const j of recovered) {
        if (j.records.length === 0) {
          j.retire();
          await removeJournal(j.file);
          continue;
        }
        for (const rec of j.records) store.local.set(rec.name, { journal: j, rec });
        store.seal(j);
      }
      store.timer = setInterval(() => store.checkAge(), Math.min(limits.maxAgeMs, 1000));
      store.timer.unref();
      return store;
    } catch (e) {
      for (const j of opened) j.retire();
      lock.release();
      throw e;
    }
  }

  get stats(): StoreStats {
    let commits = this.commits + this.active.commits;
    for (const j of this.unsealed) if (j !== this.active) commits += j.commits;
    return {
      puts: this.puts,
      commits,
      peakQueuedBytes: Math.max(this.peakQueued, this.active.peakQueuedBytes),
      sealedJournals: this.sealedJournals,
      sealedParts: this.sealedParts,
      listings: this.finder.listCalls,
    };
  }

  private ensureOpen(): void {
    if (this.closed || this.closing) throw new DesClosedError("store");
    if (this.failure !== undefined)
      throw new DesIoError("the store failed earlier; reopen it", { cause: this.failure });
  }

  /** Stores a blob under a new name; resolves with the name once the blob is durable. */
  async put(data: Uint8Array, opts: StorePutOptions = {}): Promise<string> {
    this.ensureOpen();
    if (!(data instanceof Uint8Array)) throw new DesInvalidArgumentError("put takes a Uint8Array");
    const meta = opts.meta === undefined ? undefined : encodeMetaV2(opts.meta);
    const next: NextOptions = opts.day === undefined ? {} : { day: checkPutDay(opts.day) };
    const size = data.length + name0Overhead;
    // Room a wait promised to this put, on the journal it waited on: handed back with the record
    // appended there, or given back (finally) on any other way out.
    let held: Journal | undefined;
    try {
      for (;;) {
        if (this.rotating) {
          await this.rotating;
          continue;
        }
        const j = this.active;
        const wait = j.room(size);
        if (wait) {
          await wait; // woken with room promised to this put: no second check
          held = j;
        }
        break;
      }
      this.ensureOpen();
      const name = this.gen.tryNext(next) ?? (await this.gen.next(next));
      while (this.rotating) await this.rotating;
      this.ensureOpen();
      const j = this.active;
      const credit = held === j ? size : 0;
      if (held !== j) held?.release(size);
      held = undefined;
      const { rec, durable } = j.appendRecord(name, this.gen.lastMs, meta, data, credit);
      this.local.set(name, { journal: j, rec });
      if (j.size >= this.limits.maxBytes || j.records.length >= this.limits.maxEntries)
        void this.rotate().catch(() => undefined);
      await durable;
      this.puts++;
      return name;
    } finally {
      held?.release(size);
    }
  }

  private checkAge(): void {
    const j = this.active;
    if (j.firstAt !== undefined && Date.now() - j.firstAt >= this.limits.maxAgeMs && !this.closed && !this.closing)
      void this.rotate().catch(() => undefined);
  }

  /** Starts a new journal and seals the current one in the background. */
  private rotate(): Promise<void> {
    if (this.rotating) return this.rotating;
    const old = this.active;
    if (old.records.length === 0) return Promise.resolve();
    const run = (async () => {
      const next = await Journal.create(
        path.join(this.journalDir, journalName(old.seq + 1)),
        this.nodeId,
        old.seq + 1,
        this.gen.last,
        this.limits.maxQueuedBytes,
      );
      this.active = next;
      this.seal(old);
    })();
    this.rotating = run;
    const clear = (): void => {
      if (this.rotating === run) this.rotating = undefined;
    };
    run.then(clear, (e) => {
      clear();
      this.failure ??= e;
    });
    return run;
  }

  /** Queues a full journal for sealing into parts; seals run one at a time. */
  private seal(j: Journal): void {
    this.unsealed.add(j);
    const run = this.sealChain.then(async () => {
      await j.drain();
      if (j.failed !== undefined) throw j.failed;
      this.unsealed.delete(j);
      this.commits += j.commits;
      this.peakQueued = Math.max(this.peakQueued, j.peakQueuedBytes);
      const bytes = await j.readAll();
      const parts = await sealRecords(
        bytes,
        j.records,
        { nodeId: this.nodeId, bits: this.shardBits, layout: this.layout },
        this.backend,
      );
      for (const p of parts) this.finder.added(p);
      for (const r of j.records) if (this.local.get(r.name)?.journal === j) this.local.delete(r.name);
      j.retire();
      await fs.promises.rm(j.file, { force: true });
      await syncDir(this.journalDir);
      this.sealedJournals++;
      this.sealedParts += parts.length;
    });
    // A failed seal (an upload that failed, say) does not stop puts: the journal stays on disk and in
    // memory, is served from there, and is sealed again on the next open. flush() and close() report it.
    this.sealChain = run.catch((e) => {
      this.sealFailure ??= e;
    });
    this.seals.add(run);
    const done = (): void => void this.seals.delete(run);
    run.then(done, done);
  }

  /** Seals everything written so far into parts (and uploads them) and waits for it. */
  async flush(): Promise<void> {
    this.ensureOpen();
    await this.rotate();
    await this.sealChain;
    const e = this.failure ?? this.sealFailure;
    this.sealFailure = undefined;
    if (e !== undefined) throw new DesIoError(`sealing failed: ${(e as Error).message}`, { cause: e });
  }

  private parsed(name: string): { p: ParsedName; shard: number } {
    const p = parseName(name);
    return { p, shard: shardFromName(name, this.shardBits) };
  }

  /** Runs `fn` on the sealed part that holds `name`; undefined when none does. */
  private sealed<T>(name: string, fn: (r: DesReader, key: string) => Promise<T>): Promise<T | undefined> {
    const { p, shard } = this.parsed(name);
    return this.finder.find(p.day, shard, p.nodeId, p.f, async (r, key) => {
      try {
        return await fn(r, key);
      } catch (e) {
        if (e instanceof DesNotFoundError) return undefined;
        throw e;
      }
    });
  }

  async get(name: string): Promise<Uint8Array> {
    if (this.closed) throw new DesClosedError("store");
    const loc = this.local.get(name);
    if (loc) return loc.journal.read(loc.rec.dataOffset, loc.rec.dataLength);
    const v = await this.sealed(name, (r) => r.get(name));
    if (v === undefined) throw new DesNotFoundError(name);
    return v;
  }

  async has(name: string): Promise<boolean> {
    if (this.closed) throw new DesClosedError("store");
    if (this.local.has(name)) return true;
    try {
      this.parsed(name);
    } catch {
      return false;
    }
    return (await this.sealed(name, async (r) => (await r.has(name)) || undefined)) === true;
  }

  async getMeta(name: string): Promise<MetaValue | undefined> {
    if (this.closed) throw new DesClosedError("store");
    const loc = this.local.get(name);
    if (loc)
      return loc.rec.metaLength === 0
        ? undefined
        : decodeMetaV2(loc.journal.read(loc.rec.metaOffset, loc.rec.metaLength), name);
    const v = await this.sealed(name, async (r) => ({ meta: await r.getMeta(name) }));
    if (v === undefined) throw new DesNotFoundError(name);
    return v.meta;
  }

  /**
   * Many blobs: names in the open journals are read with coalesced reads per
   * journal, the others grouped by the part that holds them, one `getMany`
   * (one coalesced batch) per part. A missing name is a DesNotFoundError.
   */
  async getMany(names: Iterable<string>): Promise<Map<string, Uint8Array>> {
    if (this.closed) throw new DesClosedError("store");
    const out = new Map<string, Uint8Array>();
    const rest = readManyJournaled(names, this.local, out);
    await this.getManySealed(rest, out);
    return out;
  }

  private getManySealed(names: readonly string[], out: Map<string, Uint8Array>): Promise<void> {
    return readManySealed(
      this.finder,
      names,
      (n) => this.parsed(n),
      (n) => this.get(n),
      out,
    );
  }

  /** Every name of a day (`YYYY-MM-DD`), sealed or not, sorted. */
  async list(day: string): Promise<string[]> {
    if (this.closed) throw new DesClosedError("store");
    return listDay(this.local.keys(), this.backend, this.finder, day, this.shardBits, this.layout);
  }

  /**
   * Merges each shard's parts of a finished day into one `<day>/<shard>.des`
   * (readers see the old parts or the merged one, never neither). Seals this
   * node's journal first when it holds names of that day.
   */
  async compactDay(day: string): Promise<{ shards: number; partsMerged: number; entries: number }> {
    this.ensureOpen();
    if ([...this.local.keys()].some((n) => nameOfDay(n, day))) await this.flush();
    else await this.sealChain;
    const r = await compactParts(this.backend, this.finder, day, this.shardBits, this.layout);
    this.finder.forget(day, r.removed);
    return { shards: r.shards, partsMerged: r.partsMerged, entries: r.entries };
  }

  /**
   * Seals what is in the journal (unless `seal: false`), waits for uploads,
   * releases the node lock. Puts that have not reached the journal when
   * close starts fail with DesClosedError; those that have are waited for.
   */
  close(opts: { seal?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closing ??= this.shut(opts.seal ?? true);
    return this.closing;
  }

  private async shut(seal: boolean): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    try {
      if (seal && this.failure === undefined) await this.rotate();
      await this.active.drain();
      await this.sealChain;
    } finally {
      this.closed = true;
      this.active.retire();
      // A journal whose seal failed stays on disk for the next open; its file is closed here.
      for (const { journal } of this.local.values()) journal.retire();
      await this.finder.close();
      this.lock.release();
    }
    const e = this.failure ?? this.sealFailure;
    if (e !== undefined) throw new DesIoError(`the store failed while sealing: ${(e as Error).message}`, { cause: e });
  }
}
