/**
 * Compaction (spec 3.8.2): `repack` copies the live entries of one archive's
 * newest generation into a new single-generation archive; `merge.ts` does
 * the same for several archives. Stored bytes and checksums are copied as
 * they are (never inflated) unless re-encoding is asked for; reads are
 * coalesced and go in batches of bounded size, so memory does not grow
 * with the bodies (only the records are held, as the new index needs them).
 */
import type { RangeGroup, RangeWant } from "../read/coalesce.js";
import { compressSync, decompressSync } from "../format/compression.js";
import { DesChecksumError, DesInvalidArgumentError, DesUnsupportedError, throwIfAborted } from "../errors.js";
import {
  DEFAULT_TAIL_SIZE,
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  HEADER_SIZE,
  KNOWN_FLAGS,
  codecId,
} from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { loadHasher, xxh64 } from "../format/hash.js";
import { decodeMetaV1, encodeMetaV2, loadMetaCodec } from "../format/meta.js";
import { encodeV2Header } from "../format/v2/footer.js";
import type { ByteSink } from "../io/sink.js";
import type { RangeSource } from "../io/source.js";
import { liveRecordBatches, openGeneration } from "../read/generations.js";
import { DesReader } from "../read/reader.js";
import type { OpenedGeneration } from "../read/generations.js";
import { FileSink } from "../sinks/file.js";
import { FileSource } from "../sources/file.js";
import { GenerationWriter, NameArena, carriedRecord } from "./generation.js";
import type { PendingRecord } from "./generation.js";
import { DesWriter } from "./writer.js";
import { ReusedBatchReads } from "./copy-reads.js";
import { HashArena } from "../format/hash-arena.js";
import { runWithin } from "../format/runs.js";

/** What a filter sees of an entry. */
export interface RepackEntry {
  readonly name: string;
  readonly size: number;
  readonly storedSize: number;
  readonly compression: Compression;
  readonly external: boolean;
  readonly metaLength: number;
}

export interface RepackOptions {
  /** Keep only the entries for which this returns true (purge by predicate). Default: all. */
  filter?: (entry: RepackEntry) => boolean;
  /** Format of the new archive. Default 2. 1 writes what the Python DES reads (bodies inflated, meta as JSON). */
  format?: 1 | 2;
  /** Re-encode every body with this compression. Default: keep each entry's stored bytes as they are. */
  compress?: Compression;
  compressLevel?: number;
  /** Replace an existing target. Default false. */
  overwrite?: boolean;
  /** Check stored bytes against their checksums while copying. Default true. */
  verify?: boolean;
  /** Stored bytes read per batch (bounds memory; one batch is read ahead). Default 1 MiB. */
  batchBytes?: number;
  signal?: AbortSignal;
}

/** What a repack or merge did. */
export interface RepackReport {
  readonly location: string;
  /** Entries written to the new archive. */
  readonly added: number;
  /** Live entries of the source(s) left out (by the filter, or as duplicates). */
  readonly deleted: number;
  readonly bytesWritten: number;
  /** Bytes of the source(s) (all generations). */
  readonly sourceBytes: number;
  /** Dead bytes in the new archive: always 0. */
  readonly reclaimableBytes: 0;
}

export function repackEntry(r: EntryRecord): RepackEntry {
  return {
    name: r.name,
    size: r.size,
    storedSize: r.storedSize,
    compression: r.compression ?? "none",
    external: (r.flags & FLAG_EXTERNAL) !== 0,
    metaLength: r.metaLength,
  };
}

/** Opens a path or source for copying (the newest committed generation). */
export async function openForCopy(
  source: string | RangeSource,
  signal?: AbortSignal,
): Promise<{ opened: OpenedGeneration; close: () => Promise<void> }> {
  await Promise.all([loadHasher(), loadMetaCodec()]);
  const src = typeof source === "string" ? await FileSource.open(source) : source;
  try {
    const opened = await openGeneration(
      src,
      src.hints,
      { tailSize: DEFAULT_TAIL_SIZE, pageCacheBytes: 16 << 20 },
      signal,
    );
    return { opened, close: async () => (typeof source === "string" ? src.close?.() : undefined) };
  } catch (e) {
    if (typeof source === "string") await src.close?.();
    throw e;
  }
}

/** Where a copy writes: a new v2 archive (header written) on a path or a sink. */
export interface CopyTarget {
  readonly sink: ByteSink;
  readonly gen: GenerationWriter;
}

export async function createCopyTarget(target: string | ByteSink, overwrite: boolean): Promise<CopyTarget> {
  const sink = typeof target === "string" ? await FileSink.create(target, { overwrite }) : target;
  try {
    await sink.write(encodeV2Header());
  } catch (e) {
    await sink.abort();
    throw e;
  }
  return { sink, gen: new GenerationWriter(sink, HEADER_SIZE) };
}

/** Writes the index and footer of a copy and commits it. */
export async function finishCopy(t: CopyTarget): Promise<number> {
  const { footer, stats } = await t.gen.finish({ prevFooterOffset: 0, generation: 0 });
  await t.sink.write(footer);
  await t.sink.commit();
  return stats.archiveLength;
}

function checkCopyable(r: EntryRecord): void {
  if (r.flags & ~KNOWN_FLAGS || r.compression === undefined) {
    throw new DesUnsupportedError(
      `entry ${JSON.stringify(r.name)} uses flags or a codec this writer does not know; it cannot be copied`,
    );
  }
}

/**
 * Positions of `records` in the order of their stored bytes (ties in the
 * order given). A native sort of numeric keys (offset * n + position, exact
 * below 2^53) where they fit, else a comparison sort.
 */
export function dataOrder(records: readonly EntryRecord[]): Uint32Array {
  const n = records.length;
  let max = 0;
  for (const r of records) if (r.dataOffset > max) max = r.dataOffset;
  if ((max + 1) * n <= Number.MAX_SAFE_INTEGER) {
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = records[i]!.dataOffset * n + i;
    keys.sort();
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = keys[i]! % n;
    return order;
  }
  return Uint32Array.from(records.keys()).sort((a, b) => records[a]!.dataOffset - records[b]!.dataOffset || a - b);
}

/** Bytes of one half of the hash arena for copies in batches of `batchBytes` (a batch's reads span its gaps too). */
function arenaHalf(batchBytes: number): number {
  return Math.min(ARENA_HALF_MAX, 3 * batchBytes);
}

/** Above this a batch's reads go to plain buffers, hashed through a copy (the arena would hold too much memory). */
const ARENA_HALF_MAX = 16 << 20;

/**
 * Copies `records` (live records of `from`) into `t.gen`, in the order of
 * their stored bytes, batch by batch. v2 -> v2 without `compress` copies
 * stored bytes and meta verbatim; otherwise bodies are inflated, re-encoded
 * and checksummed anew (v1 sources always take that path: v1 has no checksums).
 *
 * Verbatim copies are read into a hash arena (two halves used in turn), so
 * each body's checksum is computed where it was read, without a copy; they
 * enter the new index in the order of `records` (a source's index order:
 * by page, by name inside a page), so the index builder's per-page sort
 * finds runs already in order.
 */
export async function copyEntries(
  t: CopyTarget,
  from: OpenedGeneration,
  records: readonly EntryRecord[],
  opts: RepackOptions,
): Promise<void> {
  const verify = opts.verify ?? true;
  const batchBytes = opts.batchBytes ?? 1 << 20;
  const v1 = from.index.version === 1;
  if (v1) await loadMetaCodec();
  const reencode = v1 || opts.compress !== undefined;
  for (const r of records) {
    checkCopyable(r);
    if (v1 && r.flags & FLAG_EXTERNAL)
      throw new DesUnsupportedError(`${JSON.stringify(r.name)}: external entries of v1 archives are not converted`);
  }
  const names = new NameArena();
  // Verbatim copies: every record is in the index from here on, in the order given; its offsets are set once copied.
  const copied = reencode
    ? undefined
    : records.map((r) => {
        const rec = carriedRecord(r, names);
        t.gen.addCopied(r.name, rec);
        return rec;
      });
  const order = dataOrder(records);
  const hints = { maxGap: 64 << 10, maxSpan: batchBytes };
  const batches: Uint32Array[] = [];
  for (let i = 0; i < order.length;) {
    const { end } = runWithin(i, order.length, batchBytes, (k) => records[order[k]!]!.storedSize);
    batches.push(order.slice(i, end));
    i = end;
  }
  const arena = !v1 && verify ? HashArena.create(2 * arenaHalf(batchBytes)) : undefined;
  // Bodies are views into two reused buffers: each batch is written out before the batch after it is read.
  const reads = new ReusedBatchReads(from.fetcher, hints.maxGap, hints.maxSpan, arena);
  const EMPTY = new Uint8Array(0);
  // By position in the batch: bodies (views into the batch's buffer) and meta (copies).
  const readBatch = async (
    batch: Uint32Array,
  ): Promise<{ bodies: Uint8Array[]; metas: (Uint8Array | undefined)[] }> => {
    const bodies: Uint8Array[] = new Array<Uint8Array>(batch.length).fill(EMPTY);
    const metas: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(batch.length);
    const dataWants: RangeWant<number>[] = [];
    const metaWants: RangeWant<number>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const r = records[batch[i]!]!;
      if (!(r.flags & FLAG_EXTERNAL) && r.storedSize > 0)
        dataWants.push({ offset: r.dataOffset, length: r.storedSize, item: i });
      if (r.metaLength > 0) metaWants.push({ offset: r.metaOffset, length: r.metaLength, item: i });
    }
    await reads.read(dataWants, opts.signal, (i, b) => {
      bodies[i] = b;
    });
    // Meta waits in the spill buffer until the end: copied, so it does not pin the whole read.
    if (metaWants.length > 0)
      await from.fetcher.readGroups(metaWants, opts.signal, hints, (g: RangeGroup<number>, b: Uint8Array) => {
        for (const w of g.wants) metas[w.item] = b.slice(w.offset - g.offset, w.offset - g.offset + w.length);
      });
    return { bodies, metas };
  };
  // One batch read ahead, so reading overlaps writing.
  let next = batches.length > 0 ? readBatch(batches[0]!) : undefined;
  next?.catch(() => undefined);
  for (let k = 0; k < batches.length; k++) {
    throwIfAborted(opts.signal);
    const batch = batches[k]!;
    const { bodies, metas } = await next!;
    next = k + 1 < batches.length ? readBatch(batches[k + 1]!) : undefined;
    next?.catch(() => undefined);
    if (!v1 && verify)
      for (let i = 0; i < batch.length; i++) {
        const r = records[batch[i]!]!;
        const stored = bodies[i]!;
        if (stored.length > 0 && (arena ? arena.xxh64(stored) : xxh64(stored)) !== r.dataHash)
          throw new DesChecksumError({ kind: "data", name: r.name });
        const meta = metas[i];
        if (meta && xxh64(meta) !== r.metaHash) throw new DesChecksumError({ kind: "meta", name: r.name });
      }
    if (copied) {
      await copyBatch(t, batch, bodies, metas, copied);
      continue;
    }
    for (let i = 0; i < batch.length; i++) {
      const r = records[batch[i]!]!;
      const stored = bodies[i]!;
      const meta = metas[i];
      if (r.flags & FLAG_EXTERNAL) {
        const at = await t.gen.writeData(stored);
        t.gen.putCopied(r.name, carriedRecord(r, names), at, meta);
        continue;
      }
      const codec = opts.compress ?? "none";
      const body = v1 ? stored : decompressSync(r.compression!, stored, r.size, r.name);
      const out = compressSync(codec, body, opts.compressLevel);
      const at = await t.gen.writeData(out);
      const metaBytes = v1 && meta ? encodeMetaV2(decodeMetaV1(meta, r.name)) : meta;
      const rec = carriedRecord(r, names);
      t.gen.put(
        r.name,
        rec.name,
        {
          flags: codec === "none" ? 0 : FLAG_COMPRESSED,
          codec: codecId(codec),
          size: body.length,
          dataHash: out.length > 0 ? xxh64(out) : 0n,
        },
        at,
        out.length,
        metaBytes,
      );
    }
  }
}

/**
 * Writes a checked batch of verbatim copies: the bodies in one gathered
 * write (a file sink: one pwritev from where they were read, no copy),
 * instead of one write per body. They have landed when this resolves, so
 * the buffer they were read into may be read into again.
 */
async function copyBatch(
  t: CopyTarget,
  batch: Uint32Array,
  bodies: readonly Uint8Array[],
  metas: readonly (Uint8Array | undefined)[],
  copied: readonly PendingRecord[],
): Promise<void> {
  let at = await t.gen.writeDataMany(bodies);
  for (let i = 0; i < batch.length; i++) {
    t.gen.placeCopied(copied[batch[i]!]!, at, metas[i]);
    at += bodies[i]!.length;
  }
}

/** Copies records into a v1 archive (what the Python DES reads): bodies inflated, meta as Python JSON. */
export async function copyToV1(
  w: DesWriter,
  from: OpenedGeneration,
  records: readonly EntryRecord[],
  opts: RepackOptions,
): Promise<void> {
  const reader = await DesReader.open(from.source);
  try {
    const ordered = [...records].sort((a, b) => a.dataOffset - b.dataOffset);
    for (const r of ordered) {
      throwIfAborted(opts.signal);
      if (r.flags & FLAG_EXTERNAL)
        throw new DesUnsupportedError(`${JSON.stringify(r.name)}: external entries are not converted to v1`);
      const body = await reader.get(r.name, opts.signal ? { signal: opts.signal } : {});
      const meta = r.metaLength > 0 ? await reader.getMeta(r.name) : undefined;
      await w.add(r.name, body, meta !== undefined && meta !== null ? { meta } : {});
    }
  } finally {
    await reader.close();
  }
}

/**
 * Copies the live entries of `source`'s newest generation (those `filter`
 * keeps) into a new single-generation archive at `target`.
 */
export async function repack(
  source: string | RangeSource,
  target: string | ByteSink,
  opts: RepackOptions = {},
): Promise<RepackReport> {
  const format = opts.format ?? 2;
  if (format !== 1 && format !== 2) throw new DesInvalidArgumentError(`format must be 1 or 2, not ${String(format)}`);
  if (format === 1 && opts.compress && opts.compress !== "none")
    throw new DesInvalidArgumentError("v1 archives cannot hold compressed entries");
  const { opened, close } = await openForCopy(source, opts.signal);
  try {
    const keep: EntryRecord[] = [];
    let dropped = 0;
    for await (const batch of liveRecordBatches(opened.index, opts.signal, opened))
      for (const r of batch) {
        if (!opts.filter || opts.filter(repackEntry(r))) keep.push(r);
        else dropped++;
      }
    let bytesWritten: number;
    let location: string;
    if (format === 1) {
      const stats = await DesWriter.write(target, { format: 1, overwrite: opts.overwrite ?? false }, (w) =>
        copyToV1(w, opened, keep, opts),
      );
      bytesWritten = stats.archiveBytes;
      location = stats.location;
    } else {
      const t = await createCopyTarget(target, opts.overwrite ?? false);
      try {
        await copyEntries(t, opened, keep, opts);
        bytesWritten = await finishCopy(t);
      } catch (e) {
        t.gen.dispose();
        await t.sink.abort();
        throw e;
      }
      location = t.sink.location;
    }
    return {
      location,
      added: keep.length,
      deleted: dropped,
      bytesWritten,
      sourceBytes: opened.size,
      reclaimableBytes: 0,
    };
  } finally {
    await close();
  }
}
