/**
 * Append (spec 3.8): adds and deletes entries as a new generation written
 * after the last footer. This module is the part common to every medium;
 * `append-file.ts` (local, in place, crash-safe) and `../s3/append.ts`
 * (a new object version, the old bytes copied inside S3) provide the sink.
 */
import {
  DesClosedError,
  DesDuplicateError,
  DesError,
  DesInvalidArgumentError,
  DesIoError,
  DesNotFoundError,
  throwIfAborted,
} from "../errors.js";
import { FLAG_COMPRESSED, V2_FOOTER_SIZE, codecId } from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import { encodeMetaV2, loadMetaCodec } from "../format/meta.js";
import type { ByteSink } from "../io/sink.js";
import { indexPages, spaceUsage } from "../read/generations.js";
import type { OpenedGeneration } from "../read/generations.js";
import { GenerationWriter, checkName } from "./generation.js";
import { CarriedRecords } from "./carried.js";
import { closeBody, openBody } from "./body.js";
import { checkCompression, checkCount, checkLevel } from "./options.js";
import type { Body, EntryData } from "./body.js";
import { writeInternal } from "./store-body.js";

export interface AppendOptions {
  /** Default compression of added entries. Default "none". */
  compress?: Compression;
  /** gzip level (0-9) or brotli quality (0-11). */
  compressLevel?: number;
  /** Meta beyond this many bytes waits in a temporary file. Default 8 MiB. */
  metaMemoryLimit?: number;
  /** Bytes read from the end when the archive is opened. Default 64 KiB. */
  tailSize?: number;
}

export interface AppendAddOptions {
  /** Any MessagePack value. */
  meta?: unknown;
  compress?: Compression;
  signal?: AbortSignal;
}

/** What an append did. */
export interface AppendReport {
  readonly location: string;
  /** The generation written (unchanged when nothing was added or deleted). */
  readonly generation: number;
  /** Entries added (replacements included). */
  readonly added: number;
  /** Entries of the previous generation deleted (replacements included). */
  readonly deleted: number;
  /** Live entries of the new generation. */
  readonly entries: number;
  /** Bytes this append wrote: new DATA, META, the index and the footer. */
  readonly bytesWritten: number;
  readonly archiveBytes: number;
  /** Dead bytes a `repack` would reclaim (spec 3.8.2). */
  readonly reclaimableBytes: number;
}

/** A sink for a new generation; `barrier` (if any) makes everything written so far durable before the footer goes out. */
export interface AppendSink extends ByteSink {
  barrier?(): Promise<void>;
}

/** Where an append can go, besides a local path: `des-pack/s3` provides one for an S3 object. */
export interface AppendTarget {
  openAppend(opts: AppendOptions): Promise<DesAppendWriter>;
}

/**
 * Collects the changes of one generation: `add`, `addMany`, `delete`; then
 * `close()` writes it, or `abort()` leaves the archive as it was. Calls may
 * overlap; they apply in call order. Replace = `delete(name)` then
 * `add(name, ...)`.
 */
export class DesAppendWriter {
  private readonly gen: GenerationWriter;
  private readonly addedNow = new Set<string>();
  private readonly deletedOld = new Set<string>();
  private state: "open" | "closing" | "closed" | "failed" = "open";
  private failure: unknown;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sink: AppendSink,
    private readonly base: OpenedGeneration,
    private readonly opts: AppendOptions,
  ) {
    this.gen = new GenerationWriter(sink, base.size, opts.metaMemoryLimit ?? 8 << 20);
  }

  /**
   * Starts generation n+1 of the archive `base` opened (its newest
   * generation n), writing through `sink`, whose first byte lands at
   * `base.size`. Reads the whole index of generation n (the new index is
   * complete). Not for direct use: see `DesWriter.append`.
   */
  static async begin(
    sink: AppendSink,
    base: OpenedGeneration,
    opts: AppendOptions,
    signal?: AbortSignal,
  ): Promise<DesAppendWriter> {
    await loadMetaCodec();
    const w = new DesAppendWriter(sink, base, opts);
    const footer = base.footer;
    if (!footer) throw new DesInvalidArgumentError("append needs a v2 archive");
    const carried = new CarriedRecords(footer.pageBits);
    // Tombstones of earlier generations are not carried (spec 3.8.1).
    for await (const page of indexPages(base, signal)) carried.pushPage(page, footer);
    w.gen.carry(carried);
    return w;
  }

  /** The generation `close()` will write. */
  get generation(): number {
    return this.base.generation + 1;
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private ensureOpen(): void {
    if (this.state === "failed")
      throw new DesIoError("the append failed earlier and must be aborted", { cause: this.failure });
    if (this.state !== "open") throw new DesClosedError("append writer");
  }

  /** True when `name` is live in the generation being built (old and not deleted, or added now). */
  has(name: string): boolean {
    return this.gen.isLive(name, checkName(name));
  }

  add(name: string, data: EntryData, opts: AppendAddOptions = {}): Promise<void> {
    return this.enqueue(() => this.addNow(name, data, opts));
  }

  /** Adds in-memory bodies in order, as one `add` each would. */
  addMany(entries: Iterable<readonly [string, Uint8Array]>, opts: Omit<AppendAddOptions, "meta"> = {}): Promise<void> {
    let list: (readonly [string, Uint8Array])[];
    try {
      list = Array.from(entries);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.enqueue(async () => {
      for (const [name, body] of list) {
        throwIfAborted(opts.signal);
        await this.addNow(name, body, opts);
      }
    });
  }

  /** Deletes a live entry (of the previous generation, or added in this one). DesNotFoundError when there is none. */
  delete(name: string): Promise<void> {
    return this.enqueue(async () => {
      this.ensureOpen();
      const nameBytes = checkName(name);
      if (!this.gen.isLive(name, nameBytes)) throw new DesNotFoundError(name);
      if (this.addedNow.delete(name)) {
        // Added in this generation: forget it (its bytes are dead); an old record it replaced stays deleted.
        if (this.deletedOld.has(name)) this.gen.tombstone(name, nameBytes);
        else this.gen.remove(name);
        return;
      }
      this.gen.tombstone(name, nameBytes);
      this.deletedOld.add(name);
    });
  }

  private async addNow(name: string, data: EntryData, opts: AppendAddOptions): Promise<void> {
    this.ensureOpen();
    const nameBytes = checkName(name);
    if (this.gen.isLive(name, nameBytes)) {
      throw new DesDuplicateError(name);
    }
    const compression = checkCompression(opts.compress ?? this.opts.compress ?? "none", 2, JSON.stringify(name));
    checkLevel(compression, checkCount("compressLevel", this.opts.compressLevel, 0, 11));
    const metaBytes = opts.meta !== undefined ? encodeMetaV2(opts.meta) : undefined;
    throwIfAborted(opts.signal);
    // A body that is not one is refused before anything is written: the append stays usable.
    const opened = await openBody(name, data, undefined);
    let body: { offset: number; stored: number; size: number; hash: bigint };
    try {
      body = await this.writeBody(opened, compression, opts.signal);
    } catch (e) {
      // Bytes may be in the sink already: this generation can no longer be finished.
      this.state = "failed";
      this.failure = e;
      if (e instanceof DesError) throw e;
      throw new DesIoError(`${JSON.stringify(name)}: writing the body failed: ${(e as Error).message}`, { cause: e });
    } finally {
      await closeBody(opened);
    }
    const compressed = compression !== "none";
    this.gen.put(
      name,
      nameBytes,
      {
        flags: compressed ? FLAG_COMPRESSED : 0,
        codec: compressed ? codecId(compression) : 0,
        size: body.size,
        dataHash: body.hash,
      },
      body.offset,
      body.stored,
      metaBytes,
    );
    this.addedNow.add(name);
  }

  private async writeBody(
    body: Body,
    compression: Compression,
    signal?: AbortSignal,
  ): Promise<{ offset: number; stored: number; size: number; hash: bigint }> {
    const stored = await writeInternal(this.gen.out, body, compression, this.opts.compressLevel, signal);
    return { offset: stored.offset, stored: stored.stored, size: stored.original, hash: stored.hash };
  }

  /**
   * Writes generation n+1 (META, the complete index, then the footer after
   * the sink's durability barrier) and commits. With nothing added or
   * deleted, writes nothing.
   */
  async close(): Promise<AppendReport> {
    await this.queue;
    if (this.state === "failed") {
      // A failed body left bytes that belong to no record: give the generation up, then say why.
      const failure = this.failure;
      await this.abort();
      throw new DesIoError("the append failed earlier and was aborted", { cause: failure });
    }
    this.ensureOpen();
    this.state = "closing";
    const added = this.addedNow.size;
    const deleted = this.deletedOld.size;
    try {
      if (added === 0 && deleted === 0) {
        this.gen.dispose();
        await this.sink.abort();
        this.state = "closed";
        const usage = await liveBytesOf(this.base);
        return {
          location: this.sink.location,
          generation: this.base.generation,
          added,
          deleted,
          entries: usage.entries,
          bytesWritten: 0,
          archiveBytes: this.base.size,
          reclaimableBytes: this.base.size - usage.live,
        };
      }
      const { footer, stats } = await this.gen.finish({
        prevFooterOffset: this.base.size - V2_FOOTER_SIZE,
        generation: this.generation,
      });
      await this.sink.barrier?.();
      await this.sink.write(footer);
      await this.sink.commit();
      this.state = "closed";
      return {
        location: this.sink.location,
        generation: this.generation,
        added,
        deleted,
        entries: stats.records - stats.tombstones,
        bytesWritten: stats.archiveLength - this.base.size,
        archiveBytes: stats.archiveLength,
        reclaimableBytes: stats.archiveLength - stats.liveBytes,
      };
    } catch (e) {
      this.state = "failed";
      this.failure = e;
      await this.abort();
      throw e;
    }
  }

  /** Gives up this generation: the archive stays (or becomes again) exactly generation n. */
  async abort(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "failed";
    this.failure ??= new DesClosedError("append writer");
    this.gen.dispose();
    await this.sink.abort();
  }
}

/** Live entries and live bytes of an opened generation (spec 3.8.2). */
async function liveBytesOf(g: OpenedGeneration): Promise<{ entries: number; live: number }> {
  const u = await spaceUsage(g);
  return { entries: u.liveEntries, live: u.liveBytes };
}

export function invalidTarget(target: unknown): DesInvalidArgumentError {
  return new DesInvalidArgumentError(`append needs a path or an AppendTarget, not ${typeof target}`);
}
