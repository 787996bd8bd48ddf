/**
 * The live records of generation n, carried into generation n+1 (spec
 * 3.8.1), kept as generation n's pages hold them: the page bytes, and per
 * page where each record lies, in name order. A name is found by its page
 * and a binary search over the raw names, so an append needs no map over
 * every old name and makes no object per old record; the records are handed
 * to the index builder as their bytes (copied as they are, spec 3.8.1 "Old
 * records carried as bytes"), in page and name order.
 */
import { compareBytes } from "../format/bytes.js";
import { DesInvalidArgumentError } from "../errors.js";
import { FLAG_TOMBSTONE } from "../format/constants.js";
import { xxh64 } from "../format/hash.js";
import type { IndexRecordSource } from "../format/v2/index-builder.js";
import { decodePage, pageOfHash, v2RecordLength, verifyPage, writeV2Record } from "../format/v2/page.js";
import type { V2RecordInput } from "../format/v2/page.js";
import { rawRecords } from "../format/v2/raw-records.js";
import type { RawRecords } from "../format/v2/raw-records.js";
import type { V2Footer } from "../format/v2/footer.js";
import { carriedRecord } from "./generation.js";
import type { PendingRecord } from "./generation.js";

export class CarriedRecords {
  private readonly bytes: Uint8Array[] = [];
  private readonly recs: RawRecords[] = [];
  /** Dropped records, as page * 2^32 + index in the page. */
  private readonly dropped = new Set<number>();
  private count = 0;
  private weight = 0;

  constructor(readonly pageBits: number) {}

  /**
   * Adds page `bytes` (the next page, in page order) of the generation whose
   * footer is `footer`: its checksum is verified, its live records kept as
   * bytes. A page whose records are not all in this writer's form is decoded
   * with every check of `decodePage` and its live records encoded again.
   */
  pushPage(bytes: Uint8Array, footer: V2Footer): void {
    const page = this.bytes.length;
    const bodyEnd = verifyPage(bytes, page);
    let recs = rawRecords(bytes, bodyEnd, footer.indexStart);
    if (!recs) {
      const decoded = decodePage(bytes, page, footer);
      const live: V2RecordInput[] = [];
      decoded.records.forEach((r, i) => {
        if (!(r.flags & FLAG_TOMBSTONE)) live.push(carriedRecord(r, decoded.names[i]));
      });
      bytes = encodeRecords(live);
      recs = rawRecords(bytes, bytes.length, footer.indexStart);
      if (!recs) throw new DesInvalidArgumentError(`page ${page}: its records could not be carried`);
    }
    this.bytes.push(bytes);
    this.recs.push(recs);
    this.count += recs.count;
    for (let i = 0; i < recs.count; i++) this.weight += recs.weight[i]!;
  }

  get live(): number {
    return this.count - this.dropped.size;
  }

  /** Stored (not external) and meta bytes of the live carried records (spec 3.8.2). */
  get liveBytes(): number {
    return this.weight;
  }

  pageOf(name: Uint8Array): number {
    return pageOfHash(xxh64(name), this.pageBits);
  }

  /** The live carried record of `name` (UTF-8), as a handle for `drop`; -1 if none. */
  find(name: Uint8Array): number {
    const p = this.pageOf(name);
    const recs = this.recs[p];
    if (!recs) return -1;
    const bytes = this.bytes[p]!;
    let lo = 0;
    let hi = recs.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const len = recs.nameLen[mid]!;
      const c = compareAt(bytes, nameStart(recs.start[mid]!, len), len, name, 0, name.length);
      if (c === 0) {
        const h = p * 2 ** 32 + mid;
        return this.dropped.has(h) ? -1 : h;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Leaves a record (a handle from `find`) out of the new index (deleted or replaced). */
  drop(h: number): void {
    if (this.dropped.has(h)) return;
    this.dropped.add(h);
    this.weight -= this.recs[Math.floor(h / 2 ** 32)]!.weight[h % 2 ** 32]!;
  }

  /**
   * The live carried records merged with `added` (records of names not
   * carried), page by page under this page_bits, each page in name order,
   * as the index builder's source.
   */
  merged(added: readonly PendingRecord[]): IndexRecordSource {
    const P = this.recs.length;
    const extra: PendingRecord[][] = Array.from({ length: P }, () => []);
    for (const r of added) extra[this.pageOf(r.name)]!.push(r);
    const n = this.live + added.length;
    // ref >= 0: page << 32 | index of a carried record; ref < 0: -(j + 1), added[j].
    const page = new Uint32Array(n);
    const index = new Int32Array(n);
    const newOnes: PendingRecord[] = [];
    let o = 0;
    for (let p = 0; p < P; p++) {
      const recs = this.recs[p]!;
      const bytes = this.bytes[p]!;
      const add = extra[p]!.sort((a, b) => compareBytes(a.name, b.name));
      // The page's order is vouched for to the builder (pageOrderBits): carried records are strictly
      // ascending (rawRecords checks it), so the added ones must be too, and never equal a carried one.
      for (let k = 1; k < add.length; k++)
        if (compareBytes(add[k - 1]!.name, add[k]!.name) === 0) throw sameName(add[k]!.name);
      let i = 0;
      let j = 0;
      while (i < recs.count || j < add.length) {
        if (i < recs.count && this.dropped.has(p * 2 ** 32 + i)) {
          i++;
          continue;
        }
        let takeOld = j >= add.length;
        if (!takeOld && i < recs.count) {
          const len = recs.nameLen[i]!;
          const c = compareAt(bytes, nameStart(recs.start[i]!, len), len, add[j]!.name, 0, add[j]!.name.length);
          if (c === 0) throw sameName(add[j]!.name);
          takeOld = c < 0;
        }
        page[o] = p;
        if (takeOld) index[o++] = i++;
        else {
          newOnes.push(add[j++]!);
          index[o++] = -newOnes.length;
        }
      }
    }
    const shift = 32 - this.pageBits;
    const recsOf = this.recs;
    const bytesOf = this.bytes;
    // Record i's name as (buffer, start, length), without a view per call.
    let nb: Uint8Array = bytesOf[0] ?? new Uint8Array(0);
    let ns = 0;
    let nl = 0;
    const locate = (i: number): void => {
      const k = index[i]!;
      if (k < 0) {
        nb = newOnes[-k - 1]!.name;
        ns = 0;
        nl = nb.length;
        return;
      }
      const recs = recsOf[page[i]!]!;
      nb = bytesOf[page[i]!]!;
      nl = recs.nameLen[k]!;
      ns = nameStart(recs.start[k]!, nl);
    };
    return {
      count: n,
      keyBits: this.pageBits,
      pageOrderBits: this.pageBits,
      at(i) {
        const k = index[i]!;
        if (k >= 0) throw new DesInvalidArgumentError("a carried record is read as its bytes");
        return newOnes[-k - 1]!;
      },
      rawLength(i) {
        const k = index[i]!;
        if (k < 0) return 0;
        const recs = recsOf[page[i]!]!;
        return recs.end[k]! - recs.start[k]!;
      },
      copyRaw(i, buf, o) {
        const k = index[i]!;
        const recs = recsOf[page[i]!]!;
        const from = bytesOf[page[i]!]!;
        const end = recs.end[k]!;
        // Records are tens of bytes: a loop beats a view and set() per record.
        for (let s = recs.start[k]!; s < end; s++) buf[o++] = from[s]!;
        return o;
      },
      nameBytes(i) {
        locate(i);
        return nb.subarray(ns, ns + nl);
      },
      nameKey(i) {
        const k = index[i]!;
        if (k < 0) return Number(xxh64(newOnes[-k - 1]!.name) >> 32n);
        return shift === 32 ? 0 : (page[i]! << shift) >>> 0;
      },
      compareNames(a, b) {
        locate(a);
        const ab = nb;
        const as = ns;
        const al = nl;
        locate(b);
        return compareAt(ab, as, al, nb, ns, nl);
      },
    };
  }
}

function nameStart(recStart: number, nameLen: number): number {
  return recStart + (nameLen < 0x80 ? 1 : nameLen < 0x4000 ? 2 : 3);
}

function compareAt(a: Uint8Array, as: number, al: number, b: Uint8Array, bs: number, bl: number): number {
  const n = al < bl ? al : bl;
  for (let i = 0; i < n; i++) {
    const d = a[as + i]! - b[bs + i]!;
    if (d !== 0) return d;
  }
  return al - bl;
}

/** Records encoded as a page body (count, records; no checksum). */
function encodeRecords(records: readonly V2RecordInput[]): Uint8Array {
  let len = 4;
  for (const r of records) len += v2RecordLength(r);
  const buf = new Uint8Array(len);
  const view = new DataView(buf.buffer);
  view.setUint32(0, records.length, true);
  let o = 4;
  for (const r of records) o = writeV2Record(buf, view, o, r);
  return buf;
}

/** A name carried and added, or added twice, in one generation: the caller's bookkeeping failed, and the index would hold it twice. */
function sameName(name: Uint8Array): DesInvalidArgumentError {
  return new DesInvalidArgumentError(
    `${JSON.stringify(new TextDecoder().decode(name))} would be in the new index twice (an internal error: please report it)`,
  );
}
