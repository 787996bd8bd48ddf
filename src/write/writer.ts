import type { XXHashAPI } from "xxhash-wasm";
import { utf8Encode } from "../format/bytes.js";
import { FLAG_COMPRESSED, FLAG_EXTERNAL, codecId } from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import { loadHasher, xxh64 } from "../format/hash.js";
import { encodeMetaV2, loadMetaCodec } from "../format/meta.js";
import { encodeV1Header } from "../format/v1/layout.js";
import { encodeV2Header } from "../format/v2/footer.js";
import {
  DesClosedError,
  DesDuplicateError,
  DesError,
  DesInvalidArgumentError,
  DesIoError,
  throwIfAborted,
} from "../errors.js";
import { defaultExternalKey } from "../io/external.js";
import type { ByteSink } from "../io/sink.js";
import { FileSink } from "../sinks/file.js";
import { MemorySink } from "../sinks/memory.js";
import { closeBody, openBody } from "./body.js";
import type { EntryData } from "./body.js";
import { EntryTable, hashKey } from "./entry-table.js";
import { finishArchive, writerStats } from "./finish.js";
import { packGroups } from "./groups.js";
import { addPackedRows } from "./packed-add.js";
import type { WriterCore } from "./packed-add.js";
import type { GroupScratch } from "./groups.js";
import { stageEntryName } from "./names.js";
import { resolveAddOptions, resolveWriterOptions } from "./options.js";
import type { AddManyOptions, AddOptions, ResolvedOptions, WriterOptions, WriterStats } from "./options.js";
import { Output, ioError } from "./output.js";
import { SpillBuffer } from "./spill.js";
import { writeExternal, writeInternal } from "./store-body.js";
import type { StoredBody } from "./store-body.js";
import { checkV1Meta, v1ExternalKey, v1MetaDocument } from "./v1-meta.js";
import { invalidTarget } from "./append.js";
import type { AppendOptions, AppendTarget, DesAppendWriter } from "./append.js";
import { openLocalAppend } from "./append-file.js";

export type { EntryData } from "./body.js";
export type { AddManyOptions, AddOptions, WriterOptions, WriterStats } from "./options.js";

/** addMany copies small bodies together into groups of up to this many bytes, one sink write each. */
const GROUP_BYTES = 4 << 20;
/** The scratch buffer of addMany's groups, lent to one call at a time (writers seal parts one after another). */
let spareScratch: GroupScratch | undefined;

/**
 * Writes a DES archive in one pass: bodies stream straight to the sink, meta
 * waits in a spill buffer, the index is built at close from a compact entry
 * table. Crash-safe with a FileSink: nothing appears at the target until
 * `close()` succeeds.
 *
 * Errors: a refused add (a bad name, meta, body or option; a duplicate)
 * throws before anything is written and leaves the writer usable. Any
 * failure to write (data, the meta spill file, the sink), and a body that
 * fails or is aborted after some of its bytes were written, poisons the
 * writer: that add rejects, every later call rejects with DES_IO, and
 * `close()` commits nothing.
 */
export class DesWriter {
  readonly format: 1 | 2;
  private readonly out: Output;
  private readonly opts: ResolvedOptions;
  private readonly table = new EntryTable();
  private readonly meta: SpillBuffer;
  private originalBytes = 0;
  private state: "open" | "closing" | "closed" | "failed" = "open";
  private failure: unknown;
  /** Serialises adds: bodies must reach the sink one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** What the packed path (packed-add.ts) needs of this writer. */
  private readonly core: WriterCore;

  private constructor(
    sink: ByteSink,
    opts: ResolvedOptions,
    private readonly hashApi: XXHashAPI,
  ) {
    this.out = new Output(sink);
    this.opts = opts;
    this.format = opts.format;
    this.meta = new SpillBuffer(opts.metaMemoryLimit);
    this.core = {
      format: this.format,
      table: this.table,
      out: this.out,
      hashName: (name) => hashApi.h64(name, 0n),
      ensureOpen: () => this.ensureOpen(),
      poison: (e) => this.poison(e),
      pushRow: this.pushRow,
    };
  }

  /** Starts an archive at a path (crash-safe temp file + rename) or on any ByteSink. Every option is checked first. */
  static async create(target: string | ByteSink, opts: WriterOptions = {}): Promise<DesWriter> {
    const resolved = resolveWriterOptions(opts);
    const [hashApi] = await Promise.all([loadHasher(), loadMetaCodec()]);
    const sink = typeof target === "string" ? await FileSink.create(target, { overwrite: resolved.overwrite }) : target;
    const w = new DesWriter(sink, resolved, hashApi);
    try {
      await w.out.write(resolved.format === 1 ? encodeV1Header() : encodeV2Header());
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w;
  }

  /**
   * Writes an archive with `fill` and closes it; any exception aborts it, so
   * the target never holds a partial archive.
   */
  static async write(
    target: string | ByteSink,
    opts: WriterOptions,
    fill: (w: DesWriter) => Promise<void>,
  ): Promise<WriterStats> {
    const w = await DesWriter.create(target, opts);
    try {
      await fill(w);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w.close();
  }

  /**
   * Opens the newest generation of an existing v2 archive for adding and
   * deleting entries; `close()` writes the next generation (spec 3.8). A
   * path is appended to in place (locked, crash-safe); `des-pack/s3` gives
   * an AppendTarget for S3 objects.
   */
  static append(target: string | AppendTarget, opts: AppendOptions = {}): Promise<DesAppendWriter> {
    if (typeof target === "string") return openLocalAppend(target, opts);
    if (target && typeof target.openAppend === "function") return target.openAppend(opts);
    return Promise.reject(invalidTarget(target));
  }

  get entryCount(): number {
    return this.table.count;
  }

  private ensureOpen(): void {
    if (this.state === "failed" || this.out.failure) {
      throw new DesIoError("the writer failed earlier and must be aborted", {
        cause: this.out.failure ?? this.failure,
      });
    }
    if (this.state !== "open") throw new DesClosedError("writer");
  }

  /** Poisons the writer (see the class comment) and returns the DES_IO error it now fails with. */
  private poison(e: unknown): DesIoError {
    this.state = "failed";
    const io = this.out.poison(e);
    this.failure ??= io;
    return io;
  }

  /**
   * Adds one entry. Calls may overlap; they are applied in call order. A
   * refused name, meta, body or option leaves the writer usable; a failure
   * once the body's bytes are being written poisons it (see the class comment).
   */
  add(name: string, data: EntryData, opts: AddOptions = {}): Promise<void> {
    return this.enqueue(() => this.addNow(name, data, opts));
  }

  /** Adds a file from disk, streamed. */
  addFile(name: string, filePath: string, opts: AddOptions = {}): Promise<void> {
    return this.add(name, { path: filePath }, opts);
  }

  /** Runs `step` after every step queued before it; a failed step does not stop the queue. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Adds in-memory bodies in order, exactly as `add(name, body, opts)` for
   * each would (the same bytes, the same errors), with one promise for all of
   * them: the entries before a rejected one are added, the rejected one and
   * the rest are not, and a rejected name leaves the writer usable. Cheaper
   * than one `add` per entry for many small bodies. Bodies must not change
   * until the promise settles.
   */
  addMany(entries: Iterable<readonly [string, Uint8Array]>, opts: AddManyOptions = {}): Promise<void> {
    let list: (readonly [string, Uint8Array])[];
    try {
      list = Array.from(entries);
    } catch (e) {
      return Promise.reject(
        e instanceof DesError
          ? e
          : new DesInvalidArgumentError(
              `addMany: the entries cannot be iterated (${(e as Error)?.message ?? String(e)})`,
            ),
      );
    }
    return this.enqueue(() => this.addManyNow(list, opts));
  }

  /** True when a body of `size` bytes goes to the external store (v1: Python's `>=`; v2: above the threshold). */
  private isBig(size: number): boolean {
    if (this.opts.externalStore === undefined) return false;
    const t = this.opts.bigFileThreshold;
    return this.format === 1 ? size >= t : size > t;
  }

  /** True when bodies up to `maxLength` bytes can take the packed path: internal, stored as they are. */
  private packable(compression: Compression, maxLength: number): boolean {
    return compression === "none" && !this.isBig(maxLength);
  }

  private async addManyNow(list: readonly (readonly [string, Uint8Array])[], opts: AddManyOptions): Promise<void> {
    this.ensureOpen();
    const plan = resolveAddOptions(opts, this.opts);
    let maxLength = 0;
    let allBytes = true;
    for (const e of list) {
      const body = e[1];
      if (!(body instanceof Uint8Array)) allBytes = false;
      else if (body.length > maxLength) maxLength = body.length;
    }
    if (!allBytes || !this.packable(plan.compression, maxLength)) {
      const addOpts: AddOptions = { compress: plan.compression, ...(plan.signal ? { signal: plan.signal } : {}) };
      for (const [name, body] of list) await this.addNow(name, body, addOpts);
      return;
    }
    // This library's file and memory sinks are done with a chunk once its write resolves, so one scratch
    // buffer serves every group; any other sink gets fresh memory per group (it may keep chunks longer).
    const sink = this.out.sink;
    const lend = sink instanceof FileSink || sink instanceof MemorySink;
    const scratch = lend ? (spareScratch ?? { buf: new Uint8Array(0) }) : undefined;
    if (lend) spareScratch = undefined;
    try {
      for (const g of packGroups(list, GROUP_BYTES, scratch)) {
        throwIfAborted(plan.signal);
        await addPackedRows(this.core, g.names, g.bytes, g.lengths);
      }
    } finally {
      if (scratch) spareScratch = scratch;
    }
  }

  private async addNow(name: string, data: EntryData, opts: AddOptions): Promise<void> {
    this.ensureOpen();
    // The name stays staged at the end of the table's arena while the body is written (adds run one at a time).
    const nameLen = stageEntryName(this.table, name, this.format);
    const nameHash = this.hashApi.h64(name, 0n);
    const key = hashKey(nameHash);
    if (this.format === 2 && this.table.hasStaged(nameLen, nameHash, key)) throw new DesDuplicateError(name);
    const plan = resolveAddOptions(opts, this.opts);
    // Meta is checked (v2: encoded) before any byte is written, so a bad meta leaves the writer intact.
    const metaV2 = this.format === 2 && opts.meta !== undefined ? encodeMetaV2(opts.meta) : undefined;
    if (this.format === 1) checkV1Meta(opts.meta);

    const body = await openBody(name, data, plan.size);
    try {
      const store = this.opts.externalStore;
      const external = plan.external ?? (body.size !== undefined && this.isBig(body.size));
      if (external && !store)
        throw new DesInvalidArgumentError(`${JSON.stringify(name)}: external entries need an externalStore`);
      const prefix = this.opts.externalPrefix;
      const externalKey = !external
        ? undefined
        : this.format === 1
          ? v1ExternalKey(name, prefix)
          : defaultExternalKey(name, prefix);
      const ext = externalKey === undefined ? undefined : { key: externalKey, prefix };
      // v1 meta holds the size: checked now with the size known or, for a stream, the longest it could state.
      let metaV1 = this.format === 1 ? v1MetaDocument(opts.meta, body.size ?? Number.MAX_SAFE_INTEGER, ext) : undefined;
      throwIfAborted(plan.signal);

      const start = this.out.position;
      let stored: StoredBody;
      try {
        stored = external
          ? await writeExternal(store!, externalKey!, body, plan.signal)
          : await writeInternal(this.out, body, plan.compression, this.opts.compressLevel, plan.signal);
      } catch (e) {
        if (this.out.failure) throw this.poison(e);
        const typed = e instanceof DesError ? e : ioError(`${JSON.stringify(name)}: reading the body failed`, e);
        // Some of the body's bytes are in DATA with no entry to describe them: the archive cannot be finished.
        if (this.out.position !== start) this.poison(typed);
        throw typed;
      }
      if (plan.size !== undefined && stored.original !== plan.size) {
        const e = new DesInvalidArgumentError(
          `${JSON.stringify(name)}: the body had ${stored.original} bytes, size said ${plan.size}`,
        );
        if (this.out.position !== start) this.poison(e);
        throw e;
      }
      if (this.format === 1 && body.size === undefined) metaV1 = v1MetaDocument(opts.meta, stored.original, ext);
      const compressed = plan.compression !== "none" && !external && this.format === 2;
      const flags = (external ? FLAG_EXTERNAL : 0) | (compressed ? FLAG_COMPRESSED : 0);
      this.pushRow(
        name,
        nameLen,
        nameHash,
        key,
        flags,
        compressed ? codecId(plan.compression) : 0,
        stored.original,
        stored.stored,
        stored.offset,
        stored.hash,
        externalKey,
        metaV2 ?? metaV1,
      );
    } finally {
      await closeBody(body);
    }
  }

  /**
   * Adds the staged name as an entry and fills its row: the one path every
   * add takes into the table. Meta goes to META first (its offset is
   * relative to META until close); a spill failure poisons the writer.
   */
  private readonly pushRow: WriterCore["pushRow"] = (
    name,
    nameLen,
    nameHash,
    key,
    flags,
    codec,
    size,
    stored,
    offset,
    dataHash,
    externalKey,
    meta,
  ) => {
    const t = this.table;
    const metaOffset = this.meta.length;
    const hasMeta = meta !== undefined && meta.length > 0;
    if (hasMeta) {
      try {
        this.meta.append(meta);
      } catch (e) {
        throw this.poison(e);
      }
    }
    const i = t.pushStaged(nameLen, nameHash, key, nameLen === name.length ? name : undefined);
    if (hasMeta) t.setRow(i, flags, codec, size, stored, offset, dataHash, metaOffset, meta.length, xxh64(meta));
    else t.setRow(i, flags, codec, size, stored, offset, dataHash, 0, 0, 0n);
    if (externalKey !== undefined) t.externalKey.set(i, utf8Encode(externalKey));
    this.originalBytes += size;
  };

  /** Writes META, the index and the footer, then commits the sink. A poisoned writer commits nothing. */
  async close(): Promise<WriterStats> {
    await this.queue;
    // A poisoned writer cleans up (no temporary file left) and rejects.
    if (this.state === "failed" || this.out.failure) await this.abort();
    this.ensureOpen();
    this.state = "closing";
    try {
      const done = await finishArchive(this.out, this.format, this.table, this.meta);
      await this.out.commit();
      this.state = "closed";
      this.meta.dispose();
      return writerStats(this.out, this.format, this.table, done, this.originalBytes);
    } catch (e) {
      this.state = "failed";
      this.failure = e;
      await this.abort();
      throw e instanceof DesError ? e : ioError("closing the archive failed", e);
    }
  }

  /** Discards the archive: nothing at the target, no temporary file left. */
  async abort(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "failed";
    this.failure ??= new DesClosedError("writer");
    this.meta.dispose();
    await this.out.abort();
  }
}
