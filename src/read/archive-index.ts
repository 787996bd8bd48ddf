import { DesAbortedError, DesFormatError, DesUnsupportedError } from "../errors.js";
import type { BatchHints } from "./fetcher.js";
import type { ByteRange, IndexBytes } from "./index-bytes.js";
import { FLAG_TOMBSTONE, FOOTER_MAGIC, V1_FOOTER_SIZE, V2_FOOTER_SIZE, startsWith } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeV1Footer } from "../format/v1/layout.js";
import { V1Index } from "./v1-index.js";
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
  /**
   * v1: live entries (superseded duplicates and deleted entries excluded).
   * v2: the footer's entry_count, which counts tombstones too.
   */
  readonly entryCount: number;
  /** `hints`: the call's coalescing and cost overrides, for the round of index-page reads it needs. */
  lookupMany(names: readonly string[], signal?: AbortSignal, hints?: BatchHints): Promise<(EntryRecord | undefined)[]>;
  /**
   * One name: `lookupMany([name])` on a path of its own (the first lookup of
   * a fresh process runs before anything is compiled: one page read, no
   * batch bookkeeping). The live record, or null when the name is not in the archive.
   */
  lookupOne(name: string, signal?: AbortSignal): Promise<EntryRecord | null>;
  /**
   * A lookup answered without waiting when it can be (the page cached, or
   * read at once from a source that reads on the calling thread): the live
   * record, `null` when the name is not in the archive, `undefined` when the
   * page that would tell is not at hand (ask `lookupOne` or `lookupMany`).
   */
  peek(name: string): EntryRecord | null | undefined;
  /** Live names: v1 in first-added order, v2 sorted by UTF-8 bytes. */
  list(signal?: AbortSignal): Promise<string[]>;
  /**
   * Live records, a page at a time, each page read once: v1 one chunk in
   * list order; v2 page by page, each page in name (UTF-8 byte) order.
   */
  recordPages(signal?: AbortSignal): AsyncGenerator<readonly EntryRecord[]>;
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
export async function openIndex(
  tail: Tail,
  bytesOf: IndexBytes,
  pageCacheBytes: number,
  signal?: AbortSignal,
): Promise<ArchiveIndex> {
  const { bytes, size } = tail;
  const v1At = bytes.length - V1_FOOTER_SIZE;
  if (size >= 16 + V1_FOOTER_SIZE && startsWith(bytes, v1At, FOOTER_MAGIC) && bytes[v1At + 8] === 1) {
    const footer = decodeV1Footer(bytes.subarray(v1At), size);
    return V1Index.open(footer, tail, bytesOf, signal);
  }
  const v2At = bytes.length - V2_FOOTER_SIZE;
  if (size >= 16 + V2_FOOTER_SIZE && startsWith(bytes, v2At, FOOTER_MAGIC)) {
    const version = bytes[v2At + 8]!;
    if (version !== 2)
      throw new DesUnsupportedError(`archive format version ${version} is not supported (this reader knows 1 and 2)`);
    const footer = decodeV2Footer(bytes.subarray(v2At), size);
    return V2Index.open(footer, bytesOf, pageCacheBytes, signal);
  }
  throw new DesFormatError(
    size < 16 + V1_FOOTER_SIZE
      ? `too small to be a DES archive (${size} bytes)`
      : "no DES footer at the end of the data",
  );
}

const nameEncoder = new TextEncoder();

/** No lone surrogates (String.prototype.isWellFormed where the runtime has it). */
function isWellFormed(s: string): boolean {
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return f ? f.call(s) : !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));
}

/** A name's UTF-8 bytes and its page: the top `bits` bits of their xxh64 (no hash for a single page). */
function encodeName(name: string, bits: number): { bytes: Uint8Array; page: number } {
  const bytes = nameEncoder.encode(name);
  return { bytes, page: bits === 0 ? 0 : pageOfHash(xxh64(bytes), bits) };
}

/** The live record of `name` (its UTF-8 `bytes`) in a page, or null. */
function liveIn(view: PageView, bytes: Uint8Array, name: string): EntryRecord | null {
  // A well-formed string is exactly the name its UTF-8 bytes decode to: no decode needed.
  const rec = view.find(bytes, isWellFormed(name) ? name : undefined);
  // A string with lone surrogates encodes to U+FFFD: it names no record.
  return rec && (rec.flags & FLAG_TOMBSTONE) === 0 && rec.name === name ? rec : null;
}

class V2Index implements ArchiveIndex {
  declare private readonly pages: ByteLru<number, PageView>;
  declare private readonly footer: V2Footer;
  declare private readonly table: PageTable;
  declare private readonly bytesOf: IndexBytes;

  private constructor(footer: V2Footer, table: PageTable, bytesOf: IndexBytes, pageCacheBytes: number) {
    this.footer = footer;
    this.table = table;
    this.bytesOf = bytesOf;
    this.pages = new ByteLru(pageCacheBytes);
  }

  get version(): 2 {
    return 2;
  }

  static async open(
    footer: V2Footer,
    bytesOf: IndexBytes,
    pageCacheBytes: number,
    signal?: AbortSignal,
  ): Promise<V2Index> {
    const range = { offset: rootOffset(footer), length: rootLength(footer) };
    const root = bytesOf.loadSync(range) ?? (await bytesOf.loadOne(range, signal));
    return new V2Index(footer, decodeRoot(root, footer), bytesOf, pageCacheBytes);
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

  /**
   * Loads pages as verified views: cached ones from the page cache, raw
   * ones through IndexBytes (the tail, the index cache, then coalesced source
   * reads; pages are contiguous, so neighbours merge). Nothing is decoded here.
   */
  private async loadPages(
    pageIds: Iterable<number>,
    signal?: AbortSignal,
    hints?: BatchHints,
  ): Promise<Map<number, PageView>> {
    const out = new Map<number, PageView>();
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
      hints,
    );
    for (let i = 0; i < missing.length; i++) out.set(missing[i]!, this.adopt(missing[i]!, raw[i]!));
    return out;
  }

  /** A loaded page as a verified view, kept in the page cache. */
  private adopt(id: number, bytes: Uint8Array): PageView {
    const view = new PageView(bytes, id, this.footer);
    this.pages.set(id, view, view.cost);
    return view;
  }

  /**
   * Without waiting when it can: the name's page from the page cache, else
   * read at once when the source reads on the calling thread (`syncReads`);
   * searched in its raw bytes like a lookup.
   */
  peek(name: string): EntryRecord | null | undefined {
    const e = encodeName(name, this.footer.pageBits);
    let view = this.pages.get(e.page);
    if (!view) {
      const raw = this.bytesOf.loadSync(this.rangeOf(e.page));
      if (!raw) return undefined;
      view = this.adopt(e.page, raw);
    }
    return liveIn(view, e.bytes, name);
  }

  async lookupOne(name: string, signal?: AbortSignal): Promise<EntryRecord | null> {
    const e = encodeName(name, this.footer.pageBits);
    const view = this.pages.get(e.page) ?? this.adopt(e.page, await this.bytesOf.loadOne(this.rangeOf(e.page), signal));
    return liveIn(view, e.bytes, name);
  }

  /** Each name's page is searched in its raw bytes; only the records asked for are decoded. */
  async lookupMany(
    names: readonly string[],
    signal?: AbortSignal,
    hints?: BatchHints,
  ): Promise<(EntryRecord | undefined)[]> {
    const bits = this.footer.pageBits;
    const encoded = names.map((n) => encodeName(n, bits));
    const pageIds = encoded.map((e) => e.page);
    const pages = await this.loadPages(pageIds, signal, hints);
    return names.map((n, i) => liveIn(pages.get(pageIds[i]!)!, encoded[i]!.bytes, n) ?? undefined);
  }

  private allPageIds(): number[] {
    return Array.from({ length: this.pageCount }, (_, i) => i);
  }

  private rangeOf(id: number): ByteRange {
    return { offset: this.table.offsets[id]!, length: this.table.lengths[id]! };
  }

  /**
   * Decodes a page for a walk (every record, every check); its view is kept
   * in the page cache only if it fits without evicting anything.
   */
  private decodeForWalk(id: number, bytes: Uint8Array): DecodedPage {
    const view = new PageView(bytes, id, this.footer);
    const decoded = view.decodeAll();
    if (this.pages.hasRoom(view.cost)) this.pages.set(id, view, view.cost);
    return decoded;
  }

  /**
   * Every page in id order, each read once, WALK_BATCH pages a round (the
   * reads of a round coalesce). A walk never evicts the page cache: on an
   * index bigger than the cache, `list()` or `entries()` would otherwise
   * push out every hot page and read each page again on the next lookup.
   */
  private async *walk(
    signal?: AbortSignal,
    onBadPage?: (page: number, error: Error) => void,
  ): AsyncGenerator<{ id: number; page: DecodedPage }> {
    const count = this.pageCount;
    for (let start = 0; start < count; start += WALK_BATCH) {
      const ids: number[] = [];
      for (let id = start; id < Math.min(count, start + WALK_BATCH); id++) ids.push(id);
      const cached = ids.map((id) => this.pages.get(id));
      const missing = ids.filter((_, k) => !cached[k]);
      let raw: Uint8Array[] | undefined;
      try {
        raw =
          missing.length > 0
            ? await this.bytesOf.load(
                missing.map((id) => this.rangeOf(id)),
                signal,
              )
            : [];
      } catch (e) {
        if (!onBadPage || e instanceof DesAbortedError) throw e;
        for (const id of missing) onBadPage(id, e as Error);
      }
      let m = 0;
      for (let k = 0; k < ids.length; k++) {
        const id = ids[k]!;
        let page: DecodedPage | undefined;
        const view = cached[k];
        if (view) {
          try {
            page = view.decodeAll();
          } catch (e) {
            if (!onBadPage) throw e;
            onBadPage(id, e as Error);
            continue;
          }
        } else {
          const bytes = raw?.[m++];
          if (!bytes) continue;
          try {
            page = this.decodeForWalk(id, bytes);
          } catch (e) {
            if (!onBadPage) throw e;
            onBadPage(id, e as Error);
            continue;
          }
        }
        yield { id, page };
      }
    }
  }

  async list(signal?: AbortSignal): Promise<string[]> {
    // Names only (no byte copies, no records kept): about one pointer per entry beyond the strings.
    const names: string[] = [];
    for await (const { page } of this.walk(signal)) {
      for (const r of page.records) if ((r.flags & FLAG_TOMBSTONE) === 0) names.push(r.name);
    }
    return names.sort(compareUtf8);
  }

  async *recordPages(signal?: AbortSignal): AsyncGenerator<readonly EntryRecord[]> {
    for await (const { page } of this.walk(signal)) {
      const live = page.records.filter((r) => (r.flags & FLAG_TOMBSTONE) === 0);
      if (live.length > 0) yield live;
    }
  }

  async *allRecords(
    signal?: AbortSignal,
    onBadPage?: (page: number, error: Error) => void,
  ): AsyncGenerator<EntryRecord> {
    for await (const { page } of this.walk(signal, onBadPage)) yield* page.records;
  }
}

const WALK_BATCH = 64;

/**
 * Orders strings as their UTF-8 bytes would sort (the order of names in v2),
 * without encoding them: UTF-16 code units sort the same except that
 * surrogates (code points from U+10000, 4 UTF-8 bytes) must come after
 * U+E000-U+FFFF (3 bytes).
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
