import fs from "node:fs";
import { Readable } from "node:stream";
import { ByteWriter, utf8Encode } from "../format/bytes.js";
import { compressStream, compressSync } from "../format/compression.js";
import { EntryTable, hashKey } from "./entry-table.js";
import {
  DesClosedError,
  DesDuplicateError,
  DesError,
  DesInvalidArgumentError,
  DesIoError,
  throwIfAborted,
} from "../errors.js";
import { defaultExternalKey } from "../io/external.js";
import type { ExternalStore } from "../io/external.js";
import {
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  MAX_PAGE_BITS,
  MAX_PAGE_BYTES,
  PAGE_OVERHEAD,
  TARGET_PAGE_BYTES,
  V2_FOOTER_SIZE,
  codecId,
} from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import { encodeV1Footer, encodeV1Header, encodeV1Record } from "../format/v1/layout.js";
import { encodeRoot, encodeV2Footer, encodeV2Header } from "../format/v2/footer.js";
import { v2RecordLength, writeV2Record } from "../format/v2/page.js";
import type { V2RecordInput } from "../format/v2/page.js";
import { loadHasher, xxh64, xxh64Stream } from "../format/hash.js";
import type { XXHashAPI } from "xxhash-wasm";
import { encodeMetaV2 } from "../format/meta.js";
import { pyJsonDumps } from "../format/v1/pyjson.js";
import { FileSink } from "../sinks/file.js";
import type { ByteSink } from "../io/sink.js";
import { SpillBuffer } from "./spill.js";

/** A body to add: bytes, a Node stream, any async iterable of chunks, or a file on disk. */
export type EntryData = Uint8Array | Readable | AsyncIterable<Uint8Array> | { readonly path: string };

export interface WriterOptions {
  /** 2 (default) or 1 for archives the Python DES reads. */
  format?: 1 | 2;
  /** Replace an existing file at the target. Default false (DesExistsError). */
  overwrite?: boolean;
  /** Default compression for entries (v2 only). Default "none". */
  compress?: Compression;
  /** gzip level (0-9) or brotli quality (0-11). Defaults: 6 and 5. */
  compressLevel?: number;
  /** Where bodies above `bigFileThreshold` go. Without a store every body is internal. */
  externalStore?: ExternalStore;
  /** Bodies larger than this many bytes go to the external store. Default 100 MiB (the Python default). */
  bigFileThreshold?: number;
  /** Prefix of external keys: `<prefix>/_bigFiles/<name>`. */
  externalPrefix?: string;
  /** Meta beyond this many bytes moves to a temporary file while data is written. Default 8 MiB. */
  metaMemoryLimit?: number;
}

export interface AddOptions {
  /** v2: any MessagePack value. v1: a plain object (or Map) of Python-JSON values. */
  meta?: unknown;
  /** Overrides the writer's default compression for this entry. */
  compress?: Compression;
  /** Length of a stream body, when known, so the big-file threshold can apply to it. */
  size?: number;
  /** Forces the body into the external store (or keeps it in, with false). */
  external?: boolean;
  signal?: AbortSignal;
}

export interface AddManyOptions {
  /** Overrides the writer's default compression for these entries. */
  compress?: Compression;
  signal?: AbortSignal;
}

export interface WriterStats {
  readonly location: string;
  readonly formatVersion: 1 | 2;
  readonly entries: number;
  readonly externalEntries: number;
  /** Bytes of DATA (stored, after compression). */
  readonly dataBytes: number;
  /** Original bytes of all bodies, external ones included. */
  readonly originalBytes: number;
  readonly metaBytes: number;
  readonly indexBytes: number;
  readonly indexPages: number;
  readonly archiveBytes: number;
}

const V1_FORBIDDEN = /[/\\:*?"<>|]/;
/** addMany copies small bodies together into groups of up to this many bytes, one sink write each. */
const GROUP_BYTES = 4 << 20;
const DEFAULT_BIG_FILE = 100 * 1024 * 1024;

/**
 * Writes a DES archive in one pass: bodies stream straight to the sink, meta
 * waits in a spill buffer, the index is built at close from a compact entry
 * table. Crash-safe with a FileSink: nothing appears at the target until
 * `close()` succeeds.
 */
export class DesWriter {
  readonly format: 1 | 2;
  private readonly sink: ByteSink;
  private readonly opts: WriterOptions;
  private readonly table = new EntryTable();
  private readonly meta: SpillBuffer;
  private position = 0;
  private originalBytes = 0;
  private state: "open" | "closing" | "closed" | "failed" = "open";
  private failure: unknown;
  /** Serialises adds: bodies must reach the sink one after another. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(sink: ByteSink, opts: WriterOptions, private readonly hashApi: XXHashAPI) {
    this.sink = sink;
    this.opts = opts;
    this.format = opts.format ?? 2;
    this.meta = new SpillBuffer(opts.metaMemoryLimit ?? 8 << 20);
  }

  /** Starts an archive at a path (crash-safe temp file + rename) or on any ByteSink. */
  static async create(target: string | ByteSink, opts: WriterOptions = {}): Promise<DesWriter> {
    const format = opts.format ?? 2;
    if (format !== 1 && format !== 2) throw new DesInvalidArgumentError(`format must be 1 or 2, not ${String(format)}`);
    if (format === 1 && opts.compress && opts.compress !== "none") {
      throw new DesInvalidArgumentError("v1 archives cannot hold compressed entries");
    }
    const hashApi = await loadHasher();
    const sink = typeof target === "string" ? await FileSink.create(target, { overwrite: opts.overwrite ?? false }) : target;
    const w = new DesWriter(sink, opts, hashApi);
    try {
      await w.emit(format === 1 ? encodeV1Header() : encodeV2Header());
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
  static async write(target: string | ByteSink, opts: WriterOptions, fill: (w: DesWriter) => Promise<void>): Promise<WriterStats> {
    const w = await DesWriter.create(target, opts);
    try {
      await fill(w);
    } catch (e) {
      await w.abort();
      throw e;
    }
    return w.close();
  }

  get entryCount(): number {
    return this.table.count;
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    await this.sink.write(bytes);
    this.position += bytes.length;
  }

  private ensureOpen(): void {
    if (this.state === "failed") {
      throw new DesIoError("the writer failed earlier and must be aborted", { cause: this.failure });
    }
    if (this.state !== "open") throw new DesClosedError("writer");
  }

  /**
   * Adds one entry. Calls may overlap; they are applied in call order. A
   * rejected name or meta leaves the writer usable; a failure while the body
   * is being written fails the writer (abort it).
   */
  add(name: string, data: EntryData, opts: AddOptions = {}): Promise<void> {
    return this.enqueue(() => this.addNow(name, data, opts));
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
      return Promise.reject(e);
    }
    return this.enqueue(() => this.addManyNow(list, opts));
  }

  /** packDirectory's path (see `addPacked` below): one queued step for a whole read batch. */
  private addPacked(names: readonly string[], bytes: Uint8Array, lengths: ArrayLike<number>, release?: () => void, metas?: readonly unknown[]): Promise<void> {
    return this.enqueue(() => this.addPackedNow(names, bytes, lengths, release, metas));
  }


  /** True when bodies of these lengths can take the packed path: internal, stored as they are. */
  private packable(compression: Compression, maxLength: number): boolean {
    if (compression !== "none") return false;
    const store = this.opts.externalStore;
    return store === undefined || maxLength <= (this.opts.bigFileThreshold ?? DEFAULT_BIG_FILE);
  }

  private async addManyNow(list: readonly (readonly [string, Uint8Array])[], opts: AddManyOptions): Promise<void> {
    this.ensureOpen();
    const compression = opts.compress ?? this.opts.compress ?? "none";
    let maxLength = 0;
    let allBytes = true;
    for (const e of list) {
      const body = e[1];
      if (!(body instanceof Uint8Array)) allBytes = false;
      else if (body.length > maxLength) maxLength = body.length;
    }
    if (!allBytes || !this.packable(compression, maxLength)) {
      const addOpts: AddOptions = { compress: compression, ...(opts.signal ? { signal: opts.signal } : {}) };
      for (const [name, body] of list) await this.addNow(name, body, addOpts);
      return;
    }
    for (let i = 0; i < list.length; ) {
      throwIfAborted(opts.signal);
      // A group: bodies copied together up to GROUP_BYTES, or one big body as it is.
      let j = i;
      let total = 0;
      while (j < list.length && (j === i || total + list[j]![1].length <= GROUP_BYTES)) total += list[j++]![1].length;
      const names: string[] = [];
      const lengths = new Float64Array(j - i);
      let bytes: Uint8Array;
      if (j === i + 1) {
        names.push(list[i]![0]);
        lengths[0] = list[i]![1].length;
        bytes = list[i]![1];
      } else {
        bytes = new Uint8Array(total);
        let at = 0;
        for (let k = i; k < j; k++) {
          const [name, body] = list[k]!;
          names.push(name);
          lengths[k - i] = body.length;
          bytes.set(body, at);
          at += body.length;
        }
      }
      await this.addPackedNow(names, bytes, lengths, undefined);
      i = j;
    }
  }

  /**
   * Adds entries whose bodies lie back to back in `bytes` (lengths[k] bytes
   * each), stored uncompressed and internal, exactly as one `add` per entry
   * would: names are checked, hashed and entered, bodies hashed, then all
   * the bytes go to the sink in one write. Stops at the first rejected name
   * (after adding and writing the ones before it) and throws its error.
   * With `release`, a sink that can (FileSink) keeps `bytes` without copying
   * and calls `release` once written; `release` is called exactly once.
   */
  private async addPackedNow(names: readonly string[], bytes: Uint8Array, lengths: ArrayLike<number>, release?: () => void, metas?: readonly unknown[]): Promise<void> {
    let handed = false;
    try {
      this.ensureOpen();
      const t = this.table;
      const base = this.position;
      let used = 0;
      let rejected: unknown;
      const hashName = this.hashApi.h64;
      for (let k = 0; k < names.length; k++) {
        const name = names[k]!;
        const len = lengths[k]!;
        let nameLen: number;
        try {
          nameLen = this.stageName(name);
        } catch (e) {
          rejected = e;
          break;
        }
        // The hash of the name's UTF-8 bytes (encoded straight into the hasher's memory).
        const nameHash = hashName(name, 0n);
        const key = hashKey(nameHash);
        if (this.format === 2 && t.hasStaged(nameLen, nameHash, key)) {
          rejected = new DesDuplicateError(name);
          break;
        }
        const i = t.pushStaged(nameLen, nameHash, key, nameLen === name.length ? name : undefined);
        t.flags[i] = 0;
        t.codec[i] = 0;
        t.size[i] = len;
        t.storedSize[i] = len;
        t.dataOffset[i] = base + used;
        t.dataHash[i] = len > 0 ? xxh64(bytes.subarray(used, used + len)) : 0n;
        const meta = metas?.[k];
        this.storeMeta(i, this.format === 1 ? utf8Encode(v1MetaJson(meta, len, undefined)) : meta === undefined ? undefined : encodeMetaV2(meta));
        used += len;
        this.originalBytes += len;
      }
      if (used > 0) {
        const chunk = used === bytes.length ? bytes : bytes.subarray(0, used);
        this.position += used;
        try {
          const sink = this.sink;
          if (release && sink instanceof FileSink) {
            handed = true;
            await sink.writeRetained(chunk, release);
          } else {
            await sink.write(chunk);
          }
        } catch (e) {
          // Entries are in the table whose bytes may not be in the sink: the archive cannot be finished.
          this.state = "failed";
          this.failure = e;
          throw e;
        }
      }
      if (rejected !== undefined) throw rejected;
    } finally {
      if (!handed) release?.();
    }
  }

  /** Adds a file from disk, streamed. */
  addFile(name: string, filePath: string, opts: AddOptions = {}): Promise<void> {
    return this.add(name, { path: filePath }, opts);
  }

  private validateName(name: string): Uint8Array {
    if (typeof name !== "string") throw new DesInvalidArgumentError("entry names are strings");
    const bytes = utf8Encode(name);
    if (bytes.length === 0 || bytes.length > MAX_NAME_BYTES) {
      throw new DesInvalidArgumentError(`entry names are 1..${MAX_NAME_BYTES} UTF-8 bytes (got ${bytes.length})`);
    }
    if (bytes.includes(0)) throw new DesInvalidArgumentError("entry names cannot contain NUL");
    if (/[\uD800-\uDFFF]/.test(name) && !name.isWellFormed()) {
      throw new DesInvalidArgumentError("entry names must be well-formed Unicode (no lone surrogates)");
    }
    if (this.format === 1 && V1_FORBIDDEN.test(name)) {
      throw new DesInvalidArgumentError(`v1 entry names cannot contain / \\ : * ? " < > | (${JSON.stringify(name)})`);
    }
    return bytes;
  }

  /**
   * validateName without an allocation: the name is encoded in place at the
   * end of the entry table's arena (see EntryTable.stageName). The same
   * checks in the same order, so the same errors.
   */
  private stageName(name: string): number {
    if (typeof name !== "string") throw new DesInvalidArgumentError("entry names are strings");
    // Every code unit is at least one byte: a name this long is refused before it is encoded.
    const length = name.length > MAX_NAME_BYTES ? Buffer.byteLength(name, "utf8") : this.table.stageName(name);
    if (length === 0 || length > MAX_NAME_BYTES) {
      throw new DesInvalidArgumentError(`entry names are 1..${MAX_NAME_BYTES} UTF-8 bytes (got ${length})`);
    }
    if (name.includes("\0")) throw new DesInvalidArgumentError("entry names cannot contain NUL");
    // Only a name with a character beyond ASCII encodes to more bytes than it has code units.
    if (length !== name.length && /[\uD800-\uDFFF]/.test(name) && !name.isWellFormed()) {
      throw new DesInvalidArgumentError("entry names must be well-formed Unicode (no lone surrogates)");
    }
    if (this.format === 1 && V1_FORBIDDEN.test(name)) {
      throw new DesInvalidArgumentError(`v1 entry names cannot contain / \\ : * ? " < > | (${JSON.stringify(name)})`);
    }
    return length;
  }

  private async addNow(name: string, data: EntryData, opts: AddOptions): Promise<void> {
    this.ensureOpen();
    const nameBytes = this.validateName(name);
    const nameHash = xxh64(nameBytes);
    if (this.format === 2 && this.table.hasName(nameBytes, nameHash)) throw new DesDuplicateError(name);
    const compression = opts.compress ?? this.opts.compress ?? "none";
    if (this.format === 1 && compression !== "none") throw new DesInvalidArgumentError("v1 archives cannot hold compressed entries");
    if (opts.size !== undefined && (!Number.isSafeInteger(opts.size) || opts.size < 0)) throw new DesInvalidArgumentError("size must be a non-negative integer");

    const knownSize = await sizeOf(data, opts.size);
    const store = this.opts.externalStore;
    const external = opts.external ?? (store !== undefined && knownSize !== undefined && knownSize > (this.opts.bigFileThreshold ?? DEFAULT_BIG_FILE));
    if (external && !store) throw new DesInvalidArgumentError(`${JSON.stringify(name)}: external entries need an externalStore`);
    const externalKey = external ? defaultExternalKey(name, this.opts.externalPrefix) : undefined;

    // v2 meta is encoded before any byte is written, so a bad meta leaves the writer intact.
    // v1 meta needs the final size, which a stream only reveals at its end.
    const metaV2 = this.format === 2 && opts.meta !== undefined ? encodeMetaV2(opts.meta) : undefined;
    if (this.format === 1) checkV1Meta(opts.meta);

    let body: { stored: number; original: number; hash: bigint; offset: number };
    try {
      if (external) body = await this.writeExternal(store!, externalKey!, data, opts.signal);
      else body = await this.writeBody(data, compression, opts.signal);
    } catch (e) {
      // Bytes may already be in the sink; the archive can no longer be finished correctly.
      if (!external) {
        this.state = "failed";
        this.failure = e;
      }
      if (e instanceof DesError) throw e;
      throw new DesIoError(`${JSON.stringify(name)}: reading the body failed: ${(e as Error).message}`, { cause: e });
    }
    if (knownSize !== undefined && opts.size !== undefined && body.original !== opts.size) {
      this.state = "failed";
      throw new DesIoError(`${JSON.stringify(name)}: body has ${body.original} bytes, size said ${opts.size}`);
    }

    const metaBytes =
      this.format === 2 ? metaV2 : utf8Encode(v1MetaJson(opts.meta, body.original, externalKey));
    const i = this.table.push(nameBytes, nameHash);
    const t = this.table;
    const compressed = compression !== "none" && !external;
    t.flags[i] = (external ? FLAG_EXTERNAL : 0) | (compressed && this.format === 2 ? FLAG_COMPRESSED : 0);
    t.codec[i] = compressed ? codecId(compression) : 0;
    t.size[i] = body.original;
    t.storedSize[i] = body.stored;
    t.dataOffset[i] = body.offset;
    t.dataHash[i] = body.hash;
    if (externalKey !== undefined) t.externalKey.set(i, utf8Encode(externalKey));
    this.storeMeta(i, metaBytes);
    this.originalBytes += body.original;
  }

  /** Appends entry `i`'s meta to META (its offset is relative to META until close) and records it. */
  private storeMeta(i: number, metaBytes: Uint8Array | undefined): void {
    const t = this.table;
    if (metaBytes && metaBytes.length > 0) {
      t.metaOffset[i] = this.meta.length;
      t.metaLength[i] = metaBytes.length;
      t.metaHash[i] = xxh64(metaBytes);
      this.meta.append(metaBytes);
    } else {
      t.metaOffset[i] = 0;
      t.metaLength[i] = 0;
      t.metaHash[i] = 0n;
    }
  }

  private async writeBody(data: EntryData, compression: Compression, signal?: AbortSignal): Promise<{ stored: number; original: number; hash: bigint; offset: number }> {
    const offset = this.position;
    if (data instanceof Uint8Array) {
      const stored = compressSync(compression, data, this.opts.compressLevel);
      if (stored.length > 0) await this.emit(stored);
      return { stored: stored.length, original: data.length, hash: stored.length > 0 ? xxh64(stored) : 0n, offset };
    }
    const hash = xxh64Stream();
    let original = 0;
    let stored = 0;
    const source = chunksOf(data, signal);
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const c of source) {
        original += c.length;
        yield c;
      }
    };
    const out: AsyncIterable<Uint8Array> =
      compression === "none" ? counted() : Readable.from(counted()).pipe(compressStream(compression, this.opts.compressLevel));
    for await (const chunk of out) {
      const c = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBuffer);
      if (c.length === 0) continue;
      hash.update(c);
      stored += c.length;
      await this.emit(c);
    }
    // An empty body keeps the offset where it would have started, as the Python writer records it.
    return { stored, original, hash: stored > 0 ? hash.digest() : 0n, offset };
  }

  private async writeExternal(store: ExternalStore, key: string, data: EntryData, signal?: AbortSignal): Promise<{ stored: number; original: number; hash: bigint; offset: number }> {
    const hash = xxh64Stream();
    let n = 0;
    const source = chunksOf(data, signal);
    await store.put(
      key,
      (async function* () {
        for await (const c of source) {
          hash.update(c);
          n += c.length;
          yield c;
        }
      })(),
      signal,
    );
    return { stored: n, original: n, hash: n > 0 ? hash.digest() : 0n, offset: 0 };
  }

  /** Writes META, the index and the footer, then commits the sink. */
  async close(): Promise<WriterStats> {
    await this.queue;
    this.ensureOpen();
    this.state = "closing";
    try {
      const dataLength = this.position - HEADER_SIZE;
      const metaStart = this.position;
      for await (const chunk of this.meta.read()) await this.emit(chunk);
      const metaLength = this.position - metaStart;
      const indexStart = this.position;
      const pages = this.format === 1 ? await this.writeV1Index(metaStart) : await this.writeV2Index(metaStart);
      const indexLength = this.position - indexStart;
      if (this.format === 1) {
        await this.emit(
          encodeV1Footer({ dataStart: HEADER_SIZE, dataLength, metaStart, metaLength, indexStart, indexLength, fileCount: this.table.count }),
        );
      } else {
        await this.emit(
          encodeV2Footer({
            pageBits: pages.bits,
            requiredFeatures: 0,
            dataStart: HEADER_SIZE,
            dataLength,
            metaStart,
            metaLength,
            indexStart,
            indexLength,
            entryCount: this.table.count,
            prevFooterOffset: 0,
            archiveLength: this.position + V2_FOOTER_SIZE,
            rootHash: pages.rootHash,
          }),
        );
      }
      await this.sink.commit();
      this.state = "closed";
      this.meta.dispose();
      let externalEntries = 0;
      for (let i = 0; i < this.table.count; i++) if (this.table.flags[i]! & FLAG_EXTERNAL) externalEntries++;
      return {
        location: this.sink.location,
        formatVersion: this.format,
        entries: this.table.count,
        externalEntries,
        dataBytes: dataLength,
        originalBytes: this.originalBytes,
        metaBytes: metaLength,
        indexBytes: indexLength,
        indexPages: this.format === 1 ? 0 : 2 ** pages.bits,
        archiveBytes: this.position,
      };
    } catch (e) {
      this.state = "failed";
      this.failure = e;
      await this.abort();
      throw e;
    }
  }

  /** Discards the archive: nothing at the target, no temporary file left. */
  async abort(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "failed";
    this.failure ??= new DesClosedError("writer");
    this.meta.dispose();
    await this.sink.abort();
  }

  private async writeV1Index(metaStart: number): Promise<{ bits: number; rootHash: bigint }> {
    const t = this.table;
    const w = new ByteWriter(1 << 16);
    for (let i = 0; i < t.count; i++) {
      const external = (t.flags[i]! & FLAG_EXTERNAL) !== 0;
      encodeV1Record(w, {
        name: t.name(i),
        dataOffset: external ? 0 : t.dataOffset[i]!,
        dataLength: t.size[i]!,
        metaOffset: metaStart + t.metaOffset[i]!,
        metaLength: t.metaLength[i]!,
        flags: t.flags[i]!,
      });
      if (w.length >= 1 << 20) {
        await this.emit(w.finish());
        w.length = 0;
      }
    }
    if (w.length > 0) await this.emit(w.finish());
    return { bits: 0, rootHash: 0n };
  }

  /** Index groups handed to the sink and not yet written (see emitGroup). */
  private groupsInFlight: Promise<void>[] = [];

  /**
   * Emits a group of index pages. A FileSink takes it without a copy and
   * writes it behind the data still queued while the next group is encoded
   * (at most two groups wait there; commit waits for every write).
   */
  private async emitGroup(group: Uint8Array): Promise<void> {
    const sink = this.sink;
    if (!(sink instanceof FileSink)) return this.emit(group);
    const waiting = this.groupsInFlight;
    while (waiting.length > 1) await waiting.shift();
    let release!: () => void;
    waiting.push(new Promise<void>((resolve) => (release = resolve)));
    await sink.writeRetained(group, release);
    this.position += group.length;
  }

  /**
   * Section 3.4: pick page_bits, bucket records by name hash, sort each page
   * by name, write pages then root. Record sizes are computed, not encoded,
   * so each record is encoded once, into its page (whose size is checked
   * against the computed one).
   */
  private async writeV2Index(metaStart: number): Promise<{ bits: number; rootHash: bigint }> {
    const t = this.table;
    const n = t.count;
    // Record sizes (section 3.5), from the same function the format's encoder is checked against.
    const rec = recordCursor(t, metaStart);
    const recLen = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const l = v2RecordLength(rec.at(i));
      recLen[i] = l;
      total += l;
    }
    let bits = total <= TARGET_PAGE_BYTES ? 0 : Math.min(MAX_PAGE_BITS, Math.ceil(Math.log2(total / TARGET_PAGE_BYTES)));
    const pageOf = new Uint32Array(n);
    let bytes = new Float64Array(0);
    let counts = new Uint32Array(0);
    for (;;) {
      const P = 2 ** bits;
      bytes = new Float64Array(P).fill(PAGE_OVERHEAD);
      counts = new Uint32Array(P);
      const shift = 32 - bits;
      for (let i = 0; i < n; i++) {
        // nameKey is the top 32 bits of the name's hash: the page is their top page_bits.
        const p = bits === 0 ? 0 : t.nameKey[i]! >>> shift;
        pageOf[i] = p;
        bytes[p] = bytes[p]! + recLen[i]!;
        counts[p] = counts[p]! + 1;
      }
      let fits = true;
      for (let p = 0; p < P; p++) if (bytes[p]! > MAX_PAGE_BYTES && counts[p]! > 1) fits = false;
      if (fits || bits >= MAX_PAGE_BITS) break;
      bits++;
    }
    const P = 2 ** bits;
    const lengths: number[] = Array.from(bytes);
    // Pages are encoded straight from the table's columns, and each page's
    // length was computed above from the same fields: a difference would be a
    // bug, so it is checked.
    const check = (p: number, end: number, expected: number): void => {
      if (end !== expected) throw new Error(`internal error: index page ${p} ends at ${end}, not ${expected}`);
    };
    if (t.inOrder) {
      // Entries were added in name order, so each page's entries are in entry
      // order. Groups of pages (about 1/8 of the index, at least 1 MiB) are
      // encoded in one pass over the entries each: the columns are read in
      // order, where a pass per page would read them nearly at random.
      const groupBytes = Math.max(1 << 20, Math.ceil(total / 8));
      const cursor = new Float64Array(P);
      for (let g0 = 0; g0 < P; ) {
        let g1 = g0;
        let size = 0;
        while (g1 < P && (g1 === g0 || size + bytes[g1]! <= groupBytes)) size += bytes[g1++]!;
        const buf = new Uint8Array(size);
        const view = new DataView(buf.buffer);
        for (let p = g0, at = 0; p < g1; at += bytes[p++]!) {
          view.setUint32(at, counts[p]!, true);
          cursor[p] = at + 4;
        }
        for (let i = 0; i < n; i++) {
          const p = pageOf[i]!;
          if (p >= g0 && p < g1) cursor[p] = writeV2Record(buf, view, cursor[p]!, rec.at(i));
        }
        for (let p = g0, at = 0; p < g1; at += bytes[p++]!) {
          const end = at + bytes[p]! - 8;
          check(p, cursor[p]!, end);
          view.setBigUint64(end, xxh64(buf.subarray(at, end)), true);
        }
        await this.emitGroup(buf);
        g0 = g1;
      }
    } else {
      // Counting sort by page (stable: each page's entries stay in the order added), then each page by name bytes.
      const starts = new Uint32Array(P + 1);
      for (let i = 0; i < n; i++) starts[pageOf[i]! + 1] = starts[pageOf[i]! + 1]! + 1;
      for (let p = 0; p < P; p++) starts[p + 1]! += starts[p]!;
      const order = new Uint32Array(n);
      const fill = starts.slice(0, P);
      for (let i = 0; i < n; i++) order[fill[pageOf[i]!]!++] = i;
      // Pages go to the sink about 1 MiB at a time.
      let buf = new Uint8Array(1 << 20);
      let view = new DataView(buf.buffer);
      let used = 0;
      for (let p = 0; p < P; p++) {
        let members: ArrayLike<number> = order.subarray(starts[p]!, starts[p + 1]!);
        if (!t.ascending(members)) members = Array.from(members).sort((a, b) => t.compareNames(a, b));
        const pageLength = bytes[p]!;
        if (used + pageLength > buf.length) {
          if (used > 0) await this.emit(buf.subarray(0, used));
          used = 0;
          if (pageLength > buf.length) {
            buf = new Uint8Array(pageLength);
            view = new DataView(buf.buffer);
          }
        }
        const end = writePageAt(rec, members, buf, view, used);
        check(p, end, used + pageLength);
        used = end;
      }
      if (used > 0) await this.emit(buf.subarray(0, used));
    }
    const root = encodeRoot(lengths);
    await this.emit(root);
    return { bits, rootHash: xxh64(root) };
  }
}

/**
 * One record object, refilled from the table's columns for each entry:
 * the format's own encoder then writes straight from the table without an
 * object per entry.
 */
function recordCursor(t: EntryTable, metaStart: number): { at(i: number): V2RecordInput } {
  const rec = {
    name: new Uint8Array(0) as Uint8Array,
    flags: 0,
    codec: 0,
    size: 0,
    storedSize: 0,
    dataOffset: 0,
    dataHash: 0n,
    externalKey: undefined as Uint8Array | undefined,
    metaLength: 0,
    metaOffset: 0,
    metaHash: 0n,
  };
  return {
    at(i: number): V2RecordInput {
      rec.name = t.name(i);
      rec.flags = t.flags[i]!;
      rec.codec = t.codec[i]!;
      rec.size = t.size[i]!;
      rec.storedSize = t.storedSize[i]!;
      rec.dataOffset = t.dataOffset[i]!;
      rec.dataHash = t.dataHash[i]!;
      rec.externalKey = rec.flags & FLAG_EXTERNAL ? t.externalKey.get(i) : undefined;
      rec.metaLength = t.metaLength[i]!;
      rec.metaOffset = rec.metaLength > 0 ? metaStart + t.metaOffset[i]! : 0;
      rec.metaHash = t.metaHash[i]!;
      return rec;
    },
  };
}

/**
 * Writes the index page (section 3.4) of entries `members`, in this order,
 * at `at` of `buf`, which has room for it: record count, records, xxh64 of
 * the page so far. Returns the offset after it.
 */
function writePageAt(rec: { at(i: number): V2RecordInput }, members: ArrayLike<number>, buf: Uint8Array, view: DataView, at: number): number {
  view.setUint32(at, members.length, true);
  let o = at + 4;
  for (let k = 0; k < members.length; k++) o = writeV2Record(buf, view, o, rec.at(members[k]!));
  view.setBigUint64(o, xxh64(buf.subarray(at, o)), true);
  return o + 8;
}

/**
 * packDirectory's fast path (not part of the package's API): adds entries
 * whose bodies lie back to back in `bytes`, `lengths[k]` bytes each, as one
 * `add` per entry would. `release` (called exactly once) says when `bytes`
 * may be reused; until then the sink may still be writing it.
 */
export function addPacked(
  w: DesWriter,
  names: readonly string[],
  bytes: Uint8Array,
  lengths: ArrayLike<number>,
  release?: () => void,
  metas?: readonly unknown[],
): Promise<void> {
  return w["addPacked"](names, bytes, lengths, release, metas);
}

/** True when `addPacked` can take bodies up to `maxLength` bytes at once (else add them one by one). */
export function canAddPacked(w: DesWriter, maxLength: number): boolean {
  return w["packable"](w["opts"].compress ?? "none", maxLength);
}

async function sizeOf(data: EntryData, hint: number | undefined): Promise<number | undefined> {
  if (data instanceof Uint8Array) return data.length;
  if (isFileInput(data)) {
    try {
      return (await fs.promises.stat(data.path)).size;
    } catch (e) {
      throw new DesInvalidArgumentError(`cannot read ${data.path}: ${(e as Error).message}`);
    }
  }
  return hint;
}

function isFileInput(data: EntryData): data is { readonly path: string } {
  return typeof data === "object" && data !== null && !(data instanceof Uint8Array) && typeof (data as { path?: unknown }).path === "string" && !(Symbol.asyncIterator in data);
}

const SMALL_FILE = 1 << 20;

/** Normalises every accepted body form into chunks of bytes. */
async function* chunksOf(data: EntryData, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  if (isFileInput(data)) {
    const fh = await fs.promises.open(data.path, "r");
    try {
      const size = (await fh.stat()).size;
      if (size <= SMALL_FILE) {
        // One read for small files: most archives are made of them.
        const buf = Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await fh.read(buf, got, size - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got > 0) yield buf.subarray(0, got);
        return;
      }
      for await (const c of fh.createReadStream({ highWaterMark: 1 << 20, signal, autoClose: false })) yield c as Uint8Array;
    } finally {
      await fh.close();
    }
    return;
  }
  for await (const c of data as AsyncIterable<unknown>) {
    if (signal?.aborted) throw signal.reason;
    if (typeof c === "string") yield utf8Encode(c);
    else if (c instanceof Uint8Array) yield c;
    else throw new DesInvalidArgumentError("body chunks must be Uint8Array (or strings)");
  }
}

function checkV1Meta(meta: unknown): void {
  if (meta === undefined || meta === null || meta instanceof Map) return;
  if (typeof meta !== "object" || Array.isArray(meta) || meta instanceof Uint8Array) {
    throw new DesInvalidArgumentError("v1 meta must be a plain object or a Map");
  }
  pyJsonDumps(meta);
}

/**
 * The meta document the Python writer stores: the caller's keys in order,
 * then `size` (replacing a caller's `size` in place), then for external
 * entries `is_external` and `external_key`. Map.set keeps an existing key's
 * position, exactly like a Python dict.
 */
function v1MetaJson(meta: unknown, size: number, externalKey: string | undefined): string {
  const m = new Map<string, unknown>();
  if (meta instanceof Map) for (const [k, v] of meta) m.set(String(k), v);
  else if (meta && typeof meta === "object") for (const [k, v] of Object.entries(meta)) m.set(k, v);
  m.set("size", size);
  if (externalKey !== undefined) {
    m.set("is_external", true);
    m.set("external_key", externalKey);
  }
  return pyJsonDumps(m);
}
