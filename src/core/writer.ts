import fs from "node:fs";
import { Readable } from "node:stream";
import { ByteWriter, compareBytes, utf8Encode } from "./bytes.js";
import { compressStream, compressSync } from "./compression.js";
import { EntryTable } from "./entry-table.js";
import {
  DesClosedError,
  DesDuplicateError,
  DesError,
  DesInvalidArgumentError,
  DesIoError,
} from "./errors.js";
import { defaultExternalKey } from "./external.js";
import type { ExternalStore } from "./external.js";
import {
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  MAX_PAGE_BITS,
  MAX_PAGE_BYTES,
  PAGE_OVERHEAD,
  TARGET_PAGE_BYTES,
  V1_FOOTER_SIZE,
  V2_FOOTER_SIZE,
  codecId,
} from "./format/constants.js";
import type { Compression } from "./format/constants.js";
import { encodeV1Footer, encodeV1Header, encodeV1Record } from "./format/v1.js";
import { encodePage, encodeRoot, encodeV2Footer, encodeV2Header, encodeV2Record, pageOfHash } from "./format/v2.js";
import type { V2RecordInput } from "./format/v2.js";
import { loadHasher, xxh64, xxh64Stream } from "./hash.js";
import { encodeMetaV2 } from "./meta.js";
import { pyJsonDumps } from "./pyjson.js";
import { FileSink } from "./sink.js";
import type { ByteSink } from "./sink.js";
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

  private constructor(sink: ByteSink, opts: WriterOptions) {
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
    await loadHasher();
    const sink = typeof target === "string" ? await FileSink.create(target, { overwrite: opts.overwrite ?? false }) : target;
    const w = new DesWriter(sink, opts);
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
    const run = this.queue.then(() => this.addNow(name, data, opts));
    this.queue = run.catch(() => undefined);
    return run;
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
    if (metaBytes && metaBytes.length > 0) {
      t.metaOffset[i] = this.meta.length; // relative to META until close
      t.metaLength[i] = metaBytes.length;
      t.metaHash[i] = xxh64(metaBytes);
      this.meta.append(metaBytes);
    } else {
      t.metaOffset[i] = 0;
      t.metaLength[i] = 0;
      t.metaHash[i] = 0n;
    }
    this.originalBytes += body.original;
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

  private record(i: number, metaStart: number): V2RecordInput {
    const t = this.table;
    return {
      name: t.name(i),
      flags: t.flags[i]!,
      codec: t.codec[i]!,
      size: t.size[i]!,
      storedSize: t.storedSize[i]!,
      dataOffset: t.dataOffset[i]!,
      dataHash: t.dataHash[i]!,
      externalKey: t.externalKey.get(i),
      metaLength: t.metaLength[i]!,
      metaOffset: t.metaLength[i]! > 0 ? metaStart + t.metaOffset[i]! : 0,
      metaHash: t.metaHash[i]!,
    };
  }

  /** Section 3.4: pick page_bits, bucket records by name hash, sort each page by name, write pages then root. */
  private async writeV2Index(metaStart: number): Promise<{ bits: number; rootHash: bigint }> {
    const t = this.table;
    const n = t.count;
    const scratch = new ByteWriter(1 << 16);
    const recLen = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      scratch.length = 0;
      encodeV2Record(scratch, this.record(i, metaStart));
      recLen[i] = scratch.length;
      total += scratch.length;
    }
    let bits = total <= TARGET_PAGE_BYTES ? 0 : Math.min(MAX_PAGE_BITS, Math.ceil(Math.log2(total / TARGET_PAGE_BYTES)));
    let pageOf = new Uint32Array(n);
    for (;;) {
      const P = 2 ** bits;
      const bytes = new Float64Array(P).fill(PAGE_OVERHEAD);
      const counts = new Uint32Array(P);
      for (let i = 0; i < n; i++) {
        const p = pageOfHash(t.nameHash[i]!, bits);
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
    // Counting sort by page, then each page by name bytes.
    const starts = new Uint32Array(P + 1);
    for (let i = 0; i < n; i++) starts[pageOf[i]! + 1] = starts[pageOf[i]! + 1]! + 1;
    for (let p = 0; p < P; p++) starts[p + 1]! += starts[p]!;
    const order = new Uint32Array(n);
    const fill = starts.slice(0, P);
    for (let i = 0; i < n; i++) order[fill[pageOf[i]!]!++] = i;
    pageOf = new Uint32Array(0);

    const lengths: number[] = new Array(P);
    for (let p = 0; p < P; p++) {
      const members = Array.from(order.subarray(starts[p]!, starts[p + 1]!));
      members.sort((a, b) => compareBytes(t.name(a), t.name(b)));
      const page = encodePage(members.map((i) => this.record(i, metaStart)));
      lengths[p] = page.length;
      await this.emit(page);
    }
    const root = encodeRoot(lengths);
    await this.emit(root);
    return { bits, rootHash: xxh64(root) };
  }
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
