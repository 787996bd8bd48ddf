/**
 * The live records of generation n, carried into generation n+1 (spec
 * 3.8.1), kept as generation n's pages hold them: per page, in name order.
 * A name is found by its page and a binary search, so an append needs no
 * map over every old name, and the records come out in page and name order,
 * which spares the index builder its sorts when page_bits stays the same.
 */
import { xxh64 } from "../format/hash.js";
import { pageOfHash } from "../format/v2/page.js";
import type { PendingRecord } from "./generation.js";

export class CarriedRecords {
  private readonly pages: PendingRecord[][];
  private readonly dropped = new Set<PendingRecord>();
  private count = 0;

  constructor(readonly pageBits: number) {
    this.pages = Array.from({ length: 2 ** pageBits }, () => []);
  }

  /** Adds a record of page `page`; records of a page come in ascending name order (as the page holds them). */
  push(page: number, rec: PendingRecord): void {
    this.pages[page]!.push(rec);
    this.count++;
  }

  get live(): number {
    return this.count - this.dropped.size;
  }

  pageOf(name: Uint8Array): number {
    return pageOfHash(xxh64(name), this.pageBits);
  }

  /** The live carried record of `name` (UTF-8), if any. */
  find(name: Uint8Array): PendingRecord | undefined {
    const page = this.pages[this.pageOf(name)]!;
    let lo = 0;
    let hi = page.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(page[mid]!.name, name);
      if (c === 0) return this.dropped.has(page[mid]!) ? undefined : page[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Leaves a record out of the new index (deleted or replaced). */
  drop(rec: PendingRecord): void {
    this.dropped.add(rec);
  }

  /**
   * The live carried records merged with `added` (records of names not
   * carried), page by page under this page_bits, each page in name order.
   */
  merged(added: Iterable<PendingRecord>): PendingRecord[] {
    const extra: PendingRecord[][] = this.pages.map(() => []);
    for (const r of added) extra[this.pageOf(r.name)]!.push(r);
    const out: PendingRecord[] = [];
    for (let p = 0; p < this.pages.length; p++) {
      const old = this.pages[p]!;
      const add = extra[p]!.sort((a, b) => Buffer.compare(a.name, b.name));
      let i = 0;
      let j = 0;
      while (i < old.length || j < add.length) {
        if (i < old.length && this.dropped.has(old[i]!)) {
          i++;
          continue;
        }
        if (j >= add.length || (i < old.length && Buffer.compare(old[i]!.name, add[j]!.name) < 0)) out.push(old[i++]!);
        else out.push(add[j++]!);
      }
    }
    return out;
  }
}
