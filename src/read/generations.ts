/**
 * Generations (spec 3.8): opening the last committed generation of an
 * archive (also when an append is in progress or crashed: a torn tail),
 * opening an older one, listing them, and live vs dead bytes.
 */
import type { ArchiveIndex } from "./archive-index.js";
import type { Fetcher } from "./fetcher.js";
import { Opening } from "./opening.js";
import type { OpeningConfig } from "./opening.js";
import { DesFormatError, DesInvalidArgumentError } from "../errors.js";
import { FLAG_EXTERNAL, FLAG_TOMBSTONE, HEADER_SIZE, V1_FOOTER_SIZE, V2_FOOTER_SIZE } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeRoot, decodeV2Footer, rootLength, rootOffset } from "../format/v2/footer.js";
import { decodePage } from "../format/v2/page.js";
import type { V2Footer } from "../format/v2/footer.js";
import { PrefixSource } from "./prefix.js";
import { runWithin } from "../format/runs.js";
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

/** The footer of a v2 opening (decoded again from its tail: no I/O). */
export function footerOf(o: Opening): V2Footer | undefined {
  if (o.index.version !== 2) return undefined;
  const t = o.tail.bytes;
  return decodeV2Footer(t.subarray(t.length - V2_FOOTER_SIZE), o.size);
}

/** The opening's generation as its footer records it: 1 without a previous footer; 0 when a footer with one does not say. */
export function recordedGeneration(o: Opening): number {
  const f = footerOf(o);
  if (!f || f.prevFooterOffset === 0) return 1;
  return f.generation ?? 0;
}

/** What one opening of one generation holds, for the writers (append, repack, merge). */
export interface OpenedGeneration {
  readonly opening: Opening;
  readonly index: ArchiveIndex;
  /** The archive's size as this opening sees it (archive_length of the generation opened). */
  readonly size: number;
  readonly fetcher: Fetcher;
  readonly footer: V2Footer | undefined;
  /** Its number (1 for the first). */
  readonly generation: number;
  /** The source the opening reads: the archive itself, or a prefix of it. */
  readonly source: RangeSource;
}

export interface OpenGenerationOptions {
  readonly tailSize: number;
  readonly pageCacheBytes: number;
}

export async function describeOpening(o: Opening, signal?: AbortSignal): Promise<OpenedGeneration> {
  let generation = recordedGeneration(o);
  const g = {
    opening: o,
    index: o.index,
    size: o.size,
    fetcher: o.fetcher,
    footer: footerOf(o),
    generation,
    source: o.fetcher.source,
  };
  if (generation === 0) generation = (await listGenerations(g, signal)).length;
  return { ...g, generation };
}

/** Opens the newest committed generation of `source` (also under a torn tail), without an index cache. */
export async function openGeneration(
  source: RangeSource,
  hints: ReadHints,
  opts: OpenGenerationOptions,
  signal?: AbortSignal,
): Promise<OpenedGeneration> {
  const cfg: OpeningConfig = { tailSize: opts.tailSize, pageCacheBytes: opts.pageCacheBytes, hints, cache: undefined };
  return describeOpening(await Opening.load(source, cfg, signal), signal);
}

/**
 * The source that reads generation `k` of the archive `o` opened (the
 * newest): `o`'s own source when k is the newest, else a prefix of it.
 */
export async function generationSource(o: Opening, k: number, signal?: AbortSignal): Promise<RangeSource> {
  if (!Number.isSafeInteger(k) || k < 1)
    throw new DesInvalidArgumentError(`generation must be an integer >= 1, not ${String(k)}`);
  const chain = await listGenerations(await describeOpening(o, signal), signal);
  const target = chain[k - 1];
  if (!target)
    throw new DesInvalidArgumentError(`the archive has ${chain.length} generation(s); there is no generation ${k}`);
  const source = o.fetcher.source;
  if (target.archiveLength === o.size) return source;
  return new PrefixSource(source instanceof PrefixSource ? source.inner : source, target.archiveLength);
}

/** Every generation from the first to the opened one (one 128-byte read per older generation). */
export async function listGenerations(
  g: Pick<OpenedGeneration, "footer" | "size" | "index" | "fetcher">,
  signal?: AbortSignal,
): Promise<GenerationInfo[]> {
  if (!g.footer) {
    // v1: one generation, no chain.
    return [
      {
        generation: 1,
        footerOffset: g.size - V1_FOOTER_SIZE,
        archiveLength: g.size,
        records: g.index.entryCount,
        bytes: g.size,
        dataBytes: 0,
        metaBytes: 0,
        indexBytes: 0,
      },
    ];
  }
  const footers: { at: number; f: V2Footer }[] = [{ at: g.size - V2_FOOTER_SIZE, f: g.footer }];
  for (let f = g.footer; f.prevFooterOffset !== 0;) {
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

/**
 * Every record of a v2 opening, tombstones included, page by page: the pages
 * are read in a few large sequential reads and decoded (checksums and all
 * of section 3.6's page checks) without the name maps and cache a lookup
 * keeps. For the writers, which need every record exactly once.
 */
export async function* scanRecords(
  g: Pick<OpenedGeneration, "footer" | "fetcher" | "index">,
  signal?: AbortSignal,
): AsyncGenerator<EntryRecord> {
  for await (const page of scanPages(g, signal)) yield* page.records;
}

/** `scanRecords` by page, with each record's name bytes (views into the pages read: no re-encoding). */
export async function* scanPages(
  g: Pick<OpenedGeneration, "footer" | "fetcher" | "index">,
  signal?: AbortSignal,
): AsyncGenerator<{ readonly records: readonly EntryRecord[]; readonly names: readonly Uint8Array[] | undefined }> {
  const f = g.footer;
  if (!f) {
    const records: EntryRecord[] = [];
    for await (const r of g.index.allRecords(signal)) records.push(r);
    yield { records, names: undefined };
    return;
  }
  for await (const { page, bytes } of pagesOf(g, f, SCAN_BYTES, signal)) yield decodePage(bytes, page, f);
}

/** The pages of the index of footer `f`, in order, read in runs of up to `limit` bytes (at least one page each). */
async function* pagesOf(
  g: Pick<OpenedGeneration, "fetcher">,
  f: V2Footer,
  limit: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<{ readonly page: number; readonly bytes: Uint8Array }> {
  const table = decodeRoot(await g.fetcher.read(rootOffset(f), rootLength(f), signal), f);
  const P = table.lengths.length;
  for (let p = 0; p < P;) {
    const { end, total } = runWithin(p, P, limit, (i) => table.lengths[i]!);
    const chunk = await g.fetcher.read(table.offsets[p]!, total, signal);
    for (let i = p, at = 0; i < end; at += table.lengths[i++]!)
      yield { page: i, bytes: chunk.subarray(at, at + table.lengths[i]!) };
    p = end;
  }
}

const SCAN_BYTES = 4 << 20;

/**
 * The index pages of a v2 generation as bytes, in page order (checksums not
 * yet checked), read in few large reads (up to 32 MiB each): what an append
 * carries over (spec 3.8.1).
 */
export async function* indexPages(
  g: Pick<OpenedGeneration, "footer" | "fetcher">,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const f = g.footer;
  if (!f) return;
  for await (const { bytes } of pagesOf(g, f, CARRY_BYTES, signal)) yield bytes;
}

const CARRY_BYTES = 32 << 20;

/**
 * The records a reader of this opening sees (last record per name,
 * tombstones and superseded v1 duplicates dropped), a batch at a time: a v2
 * index gives one batch per page, so a writer walking 100,000 records pays
 * for a few hundred async steps, not for one per record.
 */
export async function* liveRecordBatches(
  index: ArchiveIndex,
  signal?: AbortSignal,
  g?: Pick<OpenedGeneration, "footer" | "fetcher" | "index">,
): AsyncGenerator<readonly EntryRecord[]> {
  if (index.version !== 2 || !g) {
    yield* index.recordPages(signal);
    return;
  }
  for await (const page of scanPages(g, signal)) {
    const live = page.records.filter((r) => (r.flags & FLAG_TOMBSTONE) === 0);
    if (live.length > 0) yield live;
  }
}

/** `liveRecordBatches` one record at a time. */
export async function* liveRecords(
  index: ArchiveIndex,
  signal?: AbortSignal,
  g?: Pick<OpenedGeneration, "footer" | "fetcher" | "index">,
): AsyncGenerator<EntryRecord> {
  for await (const batch of liveRecordBatches(index, signal, g)) yield* batch;
}

/** Live vs dead bytes (reads the whole index, nothing else). */
export async function spaceUsage(
  g: Pick<OpenedGeneration, "footer" | "size" | "index" | "generation">,
  signal?: AbortSignal,
): Promise<SpaceUsage> {
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
