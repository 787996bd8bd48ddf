/**
 * Generations (spec 3.8): opening the last committed generation of an
 * archive (also when an append is in progress or crashed: a torn tail),
 * opening an older one, listing them, and live vs dead bytes.
 */
import { openIndex } from "./archive-index.js";
import type { ArchiveIndex, Tail } from "./archive-index.js";
import { Fetcher } from "./fetcher.js";
import { DesChecksumError, DesFormatError, DesInvalidArgumentError } from "../errors.js";
import { FLAG_EXTERNAL, FLAG_TOMBSTONE, HEADER_SIZE, V1_FOOTER_SIZE, V2_FOOTER_SIZE } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeV2Footer } from "../format/v2/footer.js";
import type { V2Footer } from "../format/v2/footer.js";
import { MIN_V2_ARCHIVE, decodePendingLength } from "../format/v2/pending.js";
import { checkRange } from "../io/source.js";
import type { RangeSource, ReadHints } from "../io/source.js";

/** One generation of an archive, as `DesReader.generations()` reports it. */
export interface GenerationInfo {
  /** 1 for the archive as first written, then 2, 3, ... */
  readonly generation: number;
  /** Offset of this generation's footer. */
  readonly footerOffset: number;
  /** Size of the archive as of this generation (offset just past its footer). */
  readonly archiveLength: number;
  /** Records in this generation's (complete) index, tombstones included. */
  readonly records: number;
  /** Bytes this generation added: its DATA, META, INDEX and footer (plus the header for generation 1). */
  readonly bytes: number;
  readonly dataBytes: number;
  readonly metaBytes: number;
  readonly indexBytes: number;
}

/** Live vs dead bytes of the newest generation (spec 3.8.2): what `info` shows, and what `repack` would reclaim. */
export interface SpaceUsage {
  readonly archiveBytes: number;
  readonly generations: number;
  readonly liveEntries: number;
  readonly tombstones: number;
  /** Stored bytes of live internal entries. */
  readonly liveDataBytes: number;
  readonly liveMetaBytes: number;
  /** The newest index (pages and root): live bytes too, as are the header and the last footer. */
  readonly indexBytes: number;
  readonly liveBytes: number;
  /** archiveBytes - liveBytes: bodies of deleted and replaced entries, older indexes and footers. */
  readonly reclaimableBytes: number;
}

/** What one opening of one generation holds. */
export interface OpenedGeneration {
  readonly index: ArchiveIndex;
  /** The size of the archive as this opening sees it (archive_length of the generation opened). */
  readonly size: number;
  readonly fetcher: Fetcher;
  /** The opened generation's footer (v2 only). */
  readonly footer: V2Footer | undefined;
  /** Its number (1 for the first). */
  readonly generation: number;
  /** The source the opening reads: the archive itself, or a prefix of it (an older or the pending generation). */
  readonly source: RangeSource;
}

export interface OpenGenerationOptions {
  readonly tailSize: number;
  readonly pageCacheBytes: number;
  /** Open this generation (1-based) instead of the newest. */
  readonly generation?: number | undefined;
}

/**
 * The first `size` bytes of a source, as an archive of that size: an older
 * generation, or the committed generation under a torn tail. Every read is
 * pinned to the version the whole source had when the prefix was found.
 */
export class PrefixSource implements RangeSource {
  readonly key: string;
  readonly hints: ReadHints;
  readonly readMany?: RangeSource["readMany"];

  constructor(
    readonly inner: RangeSource,
    readonly size: number,
    private readonly version: string | undefined,
  ) {
    // The bytes below `size` never change once committed, so the prefix is its own stable key.
    this.key = `${inner.key}#length=${size}`;
    this.hints = inner.hints;
    const many = inner.readMany?.bind(inner);
    if (many) {
      this.readMany = (ranges, signal, version) => {
        for (const r of ranges) checkRange(r.offset, r.length, this.size, this.key);
        return many(ranges, signal, version ?? this.version);
      };
    }
  }

  read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    checkRange(offset, length, this.size, this.key);
    return this.inner.read(offset, length, signal, version ?? this.version);
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    const n = Math.min(length, this.size);
    const bytes = await this.inner.read(this.size - n, n, signal, this.version);
    return this.version === undefined ? { bytes, size: this.size } : { bytes, size: this.size, version: this.version };
  }
}

function isTornTailError(e: unknown): boolean {
  return e instanceof DesFormatError || (e instanceof DesChecksumError && e.subject.kind === "footer");
}

/**
 * Opens the archive `source` holds: the usual tail-first open; when the tail
 * is torn (no valid footer at the end) and `recover` is set, the header's
 * `pending_length` names the committed length (spec 3.8.3), and that prefix
 * is opened instead: two small extra reads, never a scan.
 */
async function openAt(source: RangeSource, hints: ReadHints, opts: OpenGenerationOptions, recover: boolean, signal?: AbortSignal): Promise<OpenedGeneration> {
  const fetcher = new Fetcher(source, hints);
  const { bytes, size } = await fetcher.readTail(opts.tailSize, signal);
  let index: ArchiveIndex;
  try {
    const tail: Tail = { bytes, start: size - bytes.length, size };
    index = await openIndex(tail, fetcher, opts.pageCacheBytes, signal);
  } catch (e) {
    if (!recover || !isTornTailError(e) || size < MIN_V2_ARCHIVE) throw e;
    const pending = decodePendingLength(await fetcher.read(0, HEADER_SIZE, signal));
    if (pending === undefined || pending < MIN_V2_ARCHIVE || pending >= size) throw e;
    const opened = await openAt(new PrefixSource(source, pending, fetcher.pinnedVersion), hints, opts, false, signal);
    opened.fetcher.stats.requests += fetcher.stats.requests;
    opened.fetcher.stats.bytes += fetcher.stats.bytes;
    return opened;
  }
  let footer: V2Footer | undefined;
  let generation = 1;
  if (index.version === 2) {
    footer = decodeV2Footer(bytes.subarray(bytes.length - V2_FOOTER_SIZE), size);
    generation = footer.prevFooterOffset === 0 ? 1 : (footer.generation ?? 0);
  }
  return { index, size, fetcher, footer, generation, source };
}

/**
 * Opens the newest committed generation of an archive (also under a torn
 * tail, see openAt), or with `opts.generation` that older generation: the
 * archive's first `archive_length(k)` bytes opened as a whole archive.
 */
export async function openGeneration(source: RangeSource, hints: ReadHints, opts: OpenGenerationOptions, signal?: AbortSignal): Promise<OpenedGeneration> {
  const want = opts.generation;
  if (want !== undefined && (!Number.isSafeInteger(want) || want < 1)) throw new DesInvalidArgumentError(`generation must be an integer >= 1, not ${String(want)}`);
  let opened = await openAt(source, hints, opts, true, signal);
  // A footer from a writer that does not record its generation: count the chain once, at open.
  if (opened.generation === 0) opened = { ...opened, generation: (await listGenerations(opened, signal)).length };
  if (want === undefined) return opened;
  const chain = await listGenerations(opened, signal);
  const target = chain[want - 1];
  if (!target) throw new DesInvalidArgumentError(`the archive has ${chain.length} generation(s); there is no generation ${want}`);
  if (target.archiveLength === opened.size) return { ...opened, generation: want };
  const older = await openAt(new PrefixSource(source, target.archiveLength, opened.fetcher.pinnedVersion), hints, opts, false, signal);
  older.fetcher.stats.requests += opened.fetcher.stats.requests;
  older.fetcher.stats.bytes += opened.fetcher.stats.bytes;
  return { ...older, generation: want };
}

/** Every generation from the first to the opened one (one 128-byte read per older generation). */
export async function listGenerations(g: OpenedGeneration, signal?: AbortSignal): Promise<GenerationInfo[]> {
  if (!g.footer) {
    // v1: one generation, no chain.
    return [{ generation: 1, footerOffset: g.size - V1_FOOTER_SIZE, archiveLength: g.size, records: g.index.entryCount, bytes: g.size, dataBytes: 0, metaBytes: 0, indexBytes: 0 }];
  }
  const footers: { at: number; f: V2Footer }[] = [{ at: g.size - V2_FOOTER_SIZE, f: g.footer }];
  for (let f = g.footer; f.prevFooterOffset !== 0; ) {
    const at = f.prevFooterOffset;
    const prev = decodeV2Footer(await g.fetcher.read(at, V2_FOOTER_SIZE, signal), at + V2_FOOTER_SIZE);
    // decodeV2Footer checks prev < its own data_start, so the chain strictly decreases and ends.
    footers.push({ at, f: prev });
    f = prev;
  }
  footers.reverse();
  return footers.map(({ at, f }, i) => {
    const recorded = f.generation ?? 0;
    if (recorded !== 0 && recorded !== i + 1 && !(i === 0 && recorded === 1)) {
      throw new DesFormatError(`footer at ${at} says generation ${recorded}, the chain says ${i + 1}`);
    }
    const start = i === 0 ? 0 : footers[i - 1]!.at + V2_FOOTER_SIZE;
    return {
      generation: i + 1,
      footerOffset: at,
      archiveLength: at + V2_FOOTER_SIZE,
      records: f.entryCount,
      bytes: at + V2_FOOTER_SIZE - start,
      dataBytes: f.dataLength,
      metaBytes: f.metaLength,
      indexBytes: f.indexLength,
    };
  });
}

/** The records a reader of this opening sees: last record per name, tombstones and superseded v1 duplicates dropped. */
export async function* liveRecords(index: ArchiveIndex, signal?: AbortSignal): AsyncGenerator<EntryRecord> {
  if (index.version === 2) {
    for await (const r of index.allRecords(signal)) if ((r.flags & FLAG_TOMBSTONE) === 0) yield r;
    return;
  }
  const last = new Map<string, EntryRecord>();
  for await (const r of index.allRecords(signal)) last.set(r.name, r);
  for (const r of last.values()) if ((r.flags & FLAG_TOMBSTONE) === 0) yield r;
}

/** Live vs dead bytes (reads the whole index, nothing else). */
export async function spaceUsage(g: OpenedGeneration, signal?: AbortSignal): Promise<SpaceUsage> {
  let liveEntries = 0;
  let tombstones = 0;
  let liveDataBytes = 0;
  let liveMetaBytes = 0;
  if (g.index.version === 2) {
    for await (const r of g.index.allRecords(signal)) {
      if (r.flags & FLAG_TOMBSTONE) {
        tombstones++;
        continue;
      }
      liveEntries++;
      if (!(r.flags & FLAG_EXTERNAL)) liveDataBytes += r.storedSize;
      liveMetaBytes += r.metaLength;
    }
  } else {
    for await (const r of liveRecords(g.index, signal)) {
      liveEntries++;
      if (!(r.flags & FLAG_EXTERNAL)) liveDataBytes += r.size;
      liveMetaBytes += r.metaLength;
    }
  }
  const f = g.footer;
  const indexBytes = f ? f.indexLength : 0;
  // v1 archives have one generation: only superseded duplicates are dead, and they are not counted.
  const liveBytes = f ? HEADER_SIZE + liveDataBytes + liveMetaBytes + indexBytes + V2_FOOTER_SIZE : g.size;
  return {
    archiveBytes: g.size,
    generations: g.generation,
    liveEntries,
    tombstones,
    liveDataBytes,
    liveMetaBytes,
    indexBytes,
    liveBytes,
    reclaimableBytes: Math.max(0, g.size - liveBytes),
  };
}
