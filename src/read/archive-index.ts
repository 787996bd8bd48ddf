import { sliceWant } from "./coalesce.js";
import type { RangeWant } from "./coalesce.js";
import { DesFormatError, DesUnsupportedError } from "../errors.js";
import type { Fetcher } from "./fetcher.js";
import { FLAG_TOMBSTONE, FOOTER_MAGIC, V1_FOOTER_SIZE, V2_FOOTER_SIZE, startsWith } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeV1Footer, decodeV1Index } from "../format/v1/layout.js";
import type { V1Footer } from "../format/v1/layout.js";
import { PageView, pageOfHash } from "../format/v2/page.js";
import { decodeRoot, decodeV2Footer, rootLength, rootOffset } from "../format/v2/footer.js";
import type { DecodedPage } from "../format/v2/page.js";
import type { PageTable, V2Footer } from "../format/v2/footer.js";
import { xxh64 } from "../format/hash.js";
import { ByteLru } from "./lru.js";

/** The last bytes of the archive, as read at open. */
export interface Tail {
  readonly bytes: Uint8Array;
  /** Archive offset of `bytes[0]`. */
  readonly start: number;
  readonly size: number;
}

/**
 * Name lookup over one archive's index, whatever its version. The reader
 * asks only these questions; everything version-specific stays behind them.
 */
export interface ArchiveIndex {
  readonly version: 1 | 2;
  /** Live entries (tombstones and superseded v1 duplicates excluded). */
  readonly entryCount: number;
  readonly dataRegion: { start: number; length: number };
  lookupMany(names: readonly string[], signal?: AbortSignal): Promise<(EntryRecord | undefined)[]>;
  /** Live names: v1 in first-added order, v2 sorted by UTF-8 bytes. */
  list(signal?: AbortSignal): Promise<string[]>;
  /**
   * Every record, tombstones included, for verification. With `onBadPage`, a
   * page that fails its checks is reported and skipped instead of thrown.
   */
  allRecords(signal?: AbortSignal, onBadPage?: (page: number, error: Error) => void): AsyncGenerator<EntryRecord>;
  /** Index pages (v2); 0 for v1, whose index is one block. */
  readonly pageCount: number;
}

/** Recognises the version from the tail (section 1 of the spec) and opens the matching index. */
export async function openIndex(tail: Tail, fetcher: Fetcher, pageCacheBytes: number, signal?: AbortSignal): Promise<ArchiveIndex> {
  const { bytes, size } = tail;
  const v1At = bytes.length - V1_FOOTER_SIZE;
  if (size >= 16 + V1_FOOTER_SIZE && startsWith(bytes, v1At, FOOTER_MAGIC) && bytes[v1At + 8] === 1) {
    const footer = decodeV1Footer(bytes.subarray(v1At), size);
    return V1Index.open(footer, tail, fetcher, signal);
  }
  const v2At = bytes.length - V2_FOOTER_SIZE;
  if (size >= 16 + V2_FOOTER_SIZE && startsWith(bytes, v2At, FOOTER_MAGIC)) {
    const version = bytes[v2At + 8]!;
    if (version !== 2) throw new DesUnsupportedError(`archive format version ${version} is not supported (this reader knows 1 and 2)`);
    const footer = decodeV2Footer(bytes.subarray(v2At), size);
    return V2Index.open(footer, fetcher, pageCacheBytes, signal);
  }
  throw new DesFormatError(size < 16 + V1_FOOTER_SIZE ? `too small to be a DES archive (${size} bytes)` : "no DES footer at the end of the data");
}

class V1Index implements ArchiveIndex {
  readonly version = 1 as const;
  private readonly byName: Map<string, EntryRecord>;
  readonly dataRegion: { start: number; length: number };

  private constructor(private readonly records: EntryRecord[], footer: V1Footer) {
    // Python dict semantics: the last record of a name wins, listed at its first position.
    this.byName = new Map();
    for (const r of records) this.byName.set(r.name, r);
    for (const [name, r] of this.byName) if (r.flags & FLAG_TOMBSTONE) this.byName.delete(name);
    this.dataRegion = { start: footer.dataStart, length: footer.dataLength };
  }

  static async open(footer: V1Footer, tail: Tail, fetcher: Fetcher, signal?: AbortSignal): Promise<V1Index> {
    const index = await fetcher.read(footer.indexStart, footer.indexLength, signal);
    return new V1Index(decodeV1Index(index, footer, tail.size), footer);
  }

  get entryCount(): number {
    return this.byName.size;
  }

  async lookupMany(names: readonly string[]): Promise<(EntryRecord | undefined)[]> {
    return names.map((n) => this.byName.get(n));
  }

  async list(): Promise<string[]> {
    return [...this.byName.keys()];
  }

  async *allRecords(): AsyncGenerator<EntryRecord> {
    yield* this.records;
  }

  readonly pageCount = 0;
}

const nameEncoder = new TextEncoder();

/** A name's UTF-8 bytes, and their xxh64 (which picks the page). */
function encodeName(name: string): { bytes: Uint8Array; hash: bigint } {
  const bytes = nameEncoder.encode(name);
  return { bytes, hash: xxh64(bytes) };
}

class V2Index implements ArchiveIndex {
  readonly version = 2 as const;
  private readonly pages: ByteLru<number, PageView>;
  readonly dataRegion: { start: number; length: number };

  private constructor(
    private readonly footer: V2Footer,
    private readonly table: PageTable,
    private readonly fetcher: Fetcher,
    pageCacheBytes: number,
  ) {
    this.pages = new ByteLru(pageCacheBytes);
    this.dataRegion = { start: footer.dataStart, length: footer.dataLength };
  }

  static async open(footer: V2Footer, fetcher: Fetcher, pageCacheBytes: number, signal?: AbortSignal): Promise<V2Index> {
    const root = await fetcher.read(rootOffset(footer), rootLength(footer), signal);
    return new V2Index(footer, decodeRoot(root, footer), fetcher, pageCacheBytes);
  }

  /** From the footer: counts tombstones too (only appended archives have any). */
  get entryCount(): number {
    return this.footer.entryCount;
  }

  get pageCount(): number {
    return this.table.lengths.length;
  }

  private view(page: number, bytes: Uint8Array): { value: PageView; bytes: number } {
    const view = new PageView(bytes, page, this.footer);
    return { value: view, bytes: view.cost };
  }

  /**
   * Loads pages as verified views: those inside the tail cost nothing, the
   * rest are read in coalesced batches (pages are contiguous, so neighbours
   * merge). Nothing is decoded here.
   */
  private async loadPages(pageIds: Iterable<number>, signal?: AbortSignal): Promise<Map<number, PageView>> {
    const out = new Map<number, PageView>();
    const wants: RangeWant<number>[] = [];
    for (const id of new Set(pageIds)) {
      const cached = this.pages.get(id);
      if (cached) {
        out.set(id, cached);
        continue;
      }
      const offset = this.table.offsets[id]!;
      const length = this.table.lengths[id]!;
      const inTail = this.fetcher.fromTail(offset, length);
      if (inTail) {
        out.set(id, await this.pages.getOrLoad(id, async () => this.view(id, inTail)));
      } else {
        wants.push({ offset, length, item: id });
      }
    }
    if (wants.length === 1) {
      const w = wants[0]!;
      out.set(w.item, await this.pages.getOrLoad(w.item, async () => this.view(w.item, await this.fetcher.read(w.offset, w.length, signal))));
    } else if (wants.length > 1) {
      await this.fetcher.readGroups(wants, signal, {}, (group, bytes) => {
        for (const w of group.wants) {
          const loaded = this.view(w.item, sliceWant(group, bytes, w));
          this.pages.set(w.item, loaded.value, loaded.bytes);
          out.set(w.item, loaded.value);
        }
      });
    }
    return out;
  }

  /** Each name's page is searched in its raw bytes; only the records asked for are decoded. */
  async lookupMany(names: readonly string[], signal?: AbortSignal): Promise<(EntryRecord | undefined)[]> {
    const bits = this.footer.pageBits;
    const encoded = names.map(encodeName);
    const pageIds = encoded.map((e) => pageOfHash(e.hash, bits));
    const pages = await this.loadPages(pageIds, signal);
    return names.map((n, i) => {
      const rec = pages.get(pageIds[i]!)!.find(encoded[i]!.bytes);
      // A string with lone surrogates encodes to U+FFFD: it names no record.
      return rec && (rec.flags & FLAG_TOMBSTONE) === 0 && rec.name === n ? rec : undefined;
    });
  }

  private allPageIds(): number[] {
    return Array.from({ length: this.pageCount }, (_, i) => i);
  }

  async list(signal?: AbortSignal): Promise<string[]> {
    const names: { bytes: Uint8Array; name: string }[] = [];
    for await (const { page, id } of this.iteratePages(signal)) {
      void id;
      page.records.forEach((r, i) => {
        if ((r.flags & FLAG_TOMBSTONE) === 0) names.push({ bytes: page.names[i]!, name: r.name });
      });
    }
    names.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    return names.map((n) => n.name);
  }

  /** Walks pages in batches so a huge index is never held decoded all at once beyond the cache budget. */
  private async *iteratePages(signal?: AbortSignal): AsyncGenerator<{ id: number; page: DecodedPage }> {
    const ids = this.allPageIds();
    const batch = 64;
    for (let i = 0; i < ids.length; i += batch) {
      const loaded = await this.loadPages(ids.slice(i, i + batch), signal);
      for (const [id, view] of [...loaded].sort((a, b) => a[0] - b[0])) yield { id, page: view.decodeAll() };
    }
  }

  async *allRecords(signal?: AbortSignal, onBadPage?: (page: number, error: Error) => void): AsyncGenerator<EntryRecord> {
    if (!onBadPage) {
      for await (const { page } of this.iteratePages(signal)) yield* page.records;
      return;
    }
    for (const id of this.allPageIds()) {
      let page: DecodedPage | undefined;
      try {
        page = (await this.loadPages([id], signal)).get(id)?.decodeAll();
      } catch (e) {
        onBadPage(id, e as Error);
      }
      if (page) yield* page.records;
    }
  }

}
