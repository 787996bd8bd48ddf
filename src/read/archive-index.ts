import { DesFormatError, DesUnsupportedError } from "../errors.js";
import type { ByteRange, IndexBytes } from "./index-bytes.js";
import { FLAG_TOMBSTONE, FOOTER_MAGIC, V1_FOOTER_SIZE, V2_FOOTER_SIZE, startsWith } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeV1Footer, decodeV1Index } from "../format/v1/layout.js";
import type { V1Footer } from "../format/v1/layout.js";
import { decodePage, pageOfHash } from "../format/v2/page.js";
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
  /**
   * v1: live entries (superseded duplicates and deleted entries excluded).
   * v2: the footer's entry_count, which counts tombstones too.
   */
  readonly entryCount: number;
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
  /** The raw ranges that make up the index (v1: the index; v2: every page), for warming a cache. */
  indexRanges(): ByteRange[];
}

/** Recognises the version from the tail (section 1 of the spec) and opens the matching index. */
export async function openIndex(tail: Tail, bytesOf: IndexBytes, pageCacheBytes: number, signal?: AbortSignal): Promise<ArchiveIndex> {
  const { bytes, size } = tail;
  const v1At = bytes.length - V1_FOOTER_SIZE;
  if (size >= 16 + V1_FOOTER_SIZE && startsWith(bytes, v1At, FOOTER_MAGIC) && bytes[v1At + 8] === 1) {
    const footer = decodeV1Footer(bytes.subarray(v1At), size);
    return V1Index.open(footer, tail, bytesOf, signal);
  }
  const v2At = bytes.length - V2_FOOTER_SIZE;
  if (size >= 16 + V2_FOOTER_SIZE && startsWith(bytes, v2At, FOOTER_MAGIC)) {
    const version = bytes[v2At + 8]!;
    if (version !== 2) throw new DesUnsupportedError(`archive format version ${version} is not supported (this reader knows 1 and 2)`);
    const footer = decodeV2Footer(bytes.subarray(v2At), size);
    return V2Index.open(footer, bytesOf, pageCacheBytes, signal);
  }
  throw new DesFormatError(size < 16 + V1_FOOTER_SIZE ? `too small to be a DES archive (${size} bytes)` : "no DES footer at the end of the data");
}

class V1Index implements ArchiveIndex {
  readonly version = 1 as const;
  private readonly byName: Map<string, EntryRecord>;

  private constructor(
    private readonly records: EntryRecord[],
    private readonly footer: V1Footer,
  ) {
    // Python dict semantics: the last record of a name wins, listed at its first position.
    this.byName = new Map();
    for (const r of records) this.byName.set(r.name, r);
    for (const [name, r] of this.byName) if (r.flags & FLAG_TOMBSTONE) this.byName.delete(name);
  }

  static async open(footer: V1Footer, tail: Tail, bytesOf: IndexBytes, signal?: AbortSignal): Promise<V1Index> {
    const [index] = await bytesOf.load([{ offset: footer.indexStart, length: footer.indexLength }], signal);
    return new V1Index(decodeV1Index(index!, footer, tail.size), footer);
  }

  indexRanges(): ByteRange[] {
    return [{ offset: this.footer.indexStart, length: this.footer.indexLength }];
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

/** Rough in-memory cost of a decoded page: its bytes plus object overhead per record (and its name map). */
function decodedPageCost(rawLength: number, records: number): number {
  return rawLength * 2 + records * 200;
}

/**
 * A decoded page with its records also keyed by name. A lookup is then one
 * hash-map probe on the caller's string: a binary search over the page's
 * name bytes touches a dozen scattered small arrays and costs several times
 * more once the index no longer fits in the CPU cache. (Equal well-formed
 * strings are equal UTF-8 bytes; names in an archive are always well formed.)
 */
interface IndexedPage extends DecodedPage {
  readonly byName: Map<string, EntryRecord>;
}

const nameEncoder = new TextEncoder();
let nameScratch = new Uint8Array(1024);

/** xxh64 of a name's UTF-8 bytes, encoded into a reused buffer (no allocation per name). */
function nameHash(name: string): bigint {
  if (name.length * 3 > nameScratch.length) nameScratch = new Uint8Array(name.length * 3);
  const { written } = nameEncoder.encodeInto(name, nameScratch);
  return xxh64(nameScratch.subarray(0, written));
}

class V2Index implements ArchiveIndex {
  readonly version = 2 as const;
  private readonly pages: ByteLru<number, IndexedPage>;

  private constructor(
    private readonly footer: V2Footer,
    private readonly table: PageTable,
    private readonly bytesOf: IndexBytes,
    pageCacheBytes: number,
  ) {
    this.pages = new ByteLru(pageCacheBytes);
  }

  static async open(footer: V2Footer, bytesOf: IndexBytes, pageCacheBytes: number, signal?: AbortSignal): Promise<V2Index> {
    const [root] = await bytesOf.load([{ offset: rootOffset(footer), length: rootLength(footer) }], signal);
    return new V2Index(footer, decodeRoot(root!, footer), bytesOf, pageCacheBytes);
  }

  indexRanges(): ByteRange[] {
    return this.allPageIds().map((id) => ({ offset: this.table.offsets[id]!, length: this.table.lengths[id]! }));
  }

  /** From the footer: counts tombstones too (only appended archives have any). */
  get entryCount(): number {
    return this.footer.entryCount;
  }

  get pageCount(): number {
    return this.table.lengths.length;
  }

  private decode(page: number, bytes: Uint8Array): { value: IndexedPage; bytes: number } {
    const decoded = decodePage(bytes, page, this.footer);
    const byName = new Map<string, EntryRecord>();
    for (const r of decoded.records) byName.set(r.name, r);
    return { value: { ...decoded, byName }, bytes: decodedPageCost(bytes.length, decoded.records.length) };
  }

  /**
   * Loads pages: decoded ones from the page cache, raw ones through
   * IndexBytes (the tail, the index cache, then coalesced source reads;
   * pages are contiguous, so neighbours merge).
   */
  private async loadPages(pageIds: readonly number[], signal?: AbortSignal): Promise<Map<number, IndexedPage>> {
    const out = new Map<number, IndexedPage>();
    const missing: number[] = [];
    for (const id of new Set(pageIds)) {
      const cached = this.pages.get(id);
      if (cached) out.set(id, cached);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    const raw = await this.bytesOf.load(
      missing.map((id) => ({ offset: this.table.offsets[id]!, length: this.table.lengths[id]! })),
      signal,
    );
    for (let i = 0; i < missing.length; i++) {
      const id = missing[i]!;
      const decoded = this.decode(id, raw[i]!);
      this.pages.set(id, decoded.value, decoded.bytes);
      out.set(id, decoded.value);
    }
    return out;
  }

  async lookupMany(names: readonly string[], signal?: AbortSignal): Promise<(EntryRecord | undefined)[]> {
    const bits = this.footer.pageBits;
    const pageIds = names.map((n) => (bits === 0 ? 0 : pageOfHash(nameHash(n), bits)));
    const pages = await this.loadPages(pageIds, signal);
    return names.map((n, i) => {
      const rec = pages.get(pageIds[i]!)!.byName.get(n);
      return rec && (rec.flags & FLAG_TOMBSTONE) === 0 ? rec : undefined;
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
      for (const [id, page] of [...loaded].sort((a, b) => a[0] - b[0])) yield { id, page };
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
        page = (await this.loadPages([id], signal)).get(id);
      } catch (e) {
        onBadPage(id, e as Error);
      }
      if (page) yield* page.records;
    }
  }

}
