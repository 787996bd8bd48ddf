/**
 * Writes one generation of a v2 archive (spec 3.8.1) from records of any
 * origin: records carried over from an older generation (offsets unchanged),
 * records whose stored bytes are written now, and tombstones. Append,
 * repack and merge are all this plus where the records come from.
 */
import { utf8Encode } from "../format/bytes.js";
import { DesUnsupportedError } from "../errors.js";
import {
  FLAG_EXTERNAL,
  FLAG_TOMBSTONE,
  HEADER_SIZE,
  KNOWN_FLAGS,
  V2_FOOTER_SIZE,
  codecId,
} from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { xxh64 } from "../format/hash.js";
import { encodeV2Footer } from "../format/v2/footer.js";
import type { V2Footer } from "../format/v2/footer.js";
import type { V2RecordInput } from "../format/v2/page.js";
import type { ByteSink } from "../io/sink.js";
import { planV2Index, recordsOf } from "../format/v2/index-builder.js";
import { entryNameBytes } from "./names.js";
import { Output } from "./output.js";
import { SpillBuffer } from "./spill.js";
import type { CarriedRecords } from "./carried.js";

/** A record of the index being built; `metaRelative` until META's place is known. Every one is made by `record()`, so all share one shape. */
export interface PendingRecord extends V2RecordInput {
  dataOffset: number;
  metaOffset: number;
  metaRelative: boolean;
}

function record(
  name: Uint8Array,
  flags: number,
  codec: number,
  size: number,
  storedSize: number,
  dataOffset: number,
  dataHash: bigint,
  externalKey: Uint8Array | undefined,
  metaLength: number,
  metaOffset: number,
  metaHash: bigint,
  metaRelative: boolean,
): PendingRecord {
  return {
    name,
    flags,
    codec,
    size,
    storedSize,
    dataOffset,
    dataHash,
    externalKey,
    metaLength,
    metaOffset,
    metaHash,
    metaRelative,
  };
}

const nameEncoder = new TextEncoder();

/**
 * UTF-8 names packed into shared buffers: one small view per name instead
 * of one buffer each (an index of a million records carries a million names).
 */
export class NameArena {
  private buf = new Uint8Array(1 << 16);
  private used = 0;

  encode(name: string): Uint8Array {
    const max = name.length * 3;
    if (this.used + max > this.buf.length) {
      this.buf = new Uint8Array(Math.max(1 << 20, max));
      this.used = 0;
    }
    const { written } = nameEncoder.encodeInto(name, this.buf.subarray(this.used));
    const out = this.buf.subarray(this.used, this.used + written);
    this.used += written;
    return out;
  }
}

/** The stored form of one entry, as written (or as found in another archive). */
export interface StoredEntry {
  readonly flags: number;
  readonly codec: number;
  readonly size: number;
  readonly dataHash: bigint;
  readonly externalKey?: Uint8Array | undefined;
}

export interface GenerationStats {
  readonly dataBytes: number;
  readonly metaBytes: number;
  readonly indexBytes: number;
  readonly indexPages: number;
  readonly records: number;
  readonly tombstones: number;
  /** Offset just past the footer: the archive's length once the footer is written. */
  readonly archiveLength: number;
  /** Header, live stored bytes and meta, this index and footer (spec 3.8.2). */
  readonly liveBytes: number;
}

/** A v2 entry name checked by the one name rule (spec 3.7), as UTF-8. */
export function checkName(name: string): Uint8Array {
  return entryNameBytes(name, 2);
}

/** A decoded record as the index builder's input, refusing what this writer could not carry over byte for byte. */
export function carriedRecord(r: EntryRecord, names?: NameArena | Uint8Array): PendingRecord {
  if (r.flags & ~KNOWN_FLAGS || r.compression === undefined) {
    throw new DesUnsupportedError(
      `entry ${JSON.stringify(r.name)} uses flags or a codec this writer does not know; it cannot be carried into a new generation`,
    );
  }
  return record(
    names instanceof Uint8Array ? names : names ? names.encode(r.name) : utf8Encode(r.name),
    r.flags,
    codecId(r.compression),
    r.size,
    r.storedSize,
    r.dataOffset,
    r.dataHash ?? 0n,
    r.externalKey === undefined ? undefined : utf8Encode(r.externalKey),
    r.metaLength,
    r.metaOffset,
    r.metaHash ?? 0n,
    false,
  );
}

export class GenerationWriter {
  /** Records written or decided in this generation (new, copied, tombstones), by name. */
  private readonly records = new Map<string, PendingRecord>();
  /** Generation n's live records (append), kept by page. */
  private carried: CarriedRecords | undefined;
  private readonly meta: SpillBuffer;
  private tombstoneCount = 0;
  /** The sink as the writer's Output: its position is the archive offset of the next byte; a failed write poisons it. */
  readonly out: Output;

  /** `start`: the offset the sink's next byte lands at (16 after a header, or the old archive's length). */
  constructor(
    sink: ByteSink,
    readonly start: number,
    metaMemoryLimit = 8 << 20,
  ) {
    this.out = new Output(sink);
    this.out.position = start;
    this.meta = new SpillBuffer(metaMemoryLimit);
  }

  get position(): number {
    return this.out.position;
  }

  get size(): number {
    return this.records.size + (this.carried?.live ?? 0);
  }

  /** Starts from generation n's live records (append). */
  carry(c: CarriedRecords): void {
    this.carried = c;
  }

  /** True when the index being built holds `name` (its UTF-8 bytes: `nameBytes`) as a live record. */
  isLive(name: string, nameBytes: Uint8Array): boolean {
    const r = this.records.get(name);
    if (r !== undefined) return (r.flags & FLAG_TOMBSTONE) === 0;
    return this.carried !== undefined && this.carried.find(nameBytes) >= 0;
  }

  /** Drops `name` from the index being built (its bytes, if any, stay written: dead bytes). */
  remove(name: string): boolean {
    const r = this.records.get(name);
    if (r && r.flags & FLAG_TOMBSTONE) this.tombstoneCount--;
    return this.records.delete(name);
  }

  tombstone(name: string, nameBytes: Uint8Array): void {
    const old = this.carried?.find(nameBytes) ?? -1;
    if (old >= 0) this.carried!.drop(old);
    if (!this.isTombstone(name)) this.tombstoneCount++;
    this.records.set(name, record(nameBytes, FLAG_TOMBSTONE, 0, 0, 0, 0, 0n, undefined, 0, 0, 0n, false));
  }

  private isTombstone(name: string): boolean {
    const r = this.records.get(name);
    return r !== undefined && (r.flags & FLAG_TOMBSTONE) !== 0;
  }

  /** Appends stored bytes to DATA; returns their offset. */
  async writeData(bytes: Uint8Array): Promise<number> {
    const at = this.out.position;
    if (bytes.length > 0) await this.out.write(bytes);
    return at;
  }

  /** Appends several stored byte ranges back to back (landed when this resolves); returns the offset of the first. */
  async writeDataMany(chunks: readonly Uint8Array[]): Promise<number> {
    const at = this.out.position;
    await this.out.writeMany(chunks);
    return at;
  }

  /**
   * Adds an entry whose stored bytes were just written with `writeData` at
   * `offset` (`storedSize` of them), and its meta bytes (already encoded).
   */
  put(
    name: string,
    nameBytes: Uint8Array,
    stored: StoredEntry,
    offset: number,
    storedSize: number,
    metaBytes: Uint8Array | undefined,
  ): void {
    let metaOffset = 0;
    let metaHash = 0n;
    const metaLength = metaBytes?.length ?? 0;
    if (metaBytes && metaLength > 0) {
      metaOffset = this.meta.length;
      metaHash = xxh64(metaBytes);
      this.meta.append(metaBytes);
    }
    if (this.isTombstone(name)) this.tombstoneCount--;
    const external = (stored.flags & FLAG_EXTERNAL) !== 0;
    this.records.set(
      name,
      record(
        nameBytes,
        stored.flags,
        stored.codec,
        stored.size,
        storedSize,
        external || storedSize === 0 ? 0 : offset,
        storedSize > 0 ? stored.dataHash : 0n,
        stored.externalKey,
        metaLength,
        metaOffset,
        metaHash,
        metaLength > 0,
      ),
    );
  }

  /**
   * Adds an entry copied from elsewhere with its meta bytes verbatim (repack,
   * merge): the meta's checksum is the one recorded there.
   */
  putCopied(name: string, rec: PendingRecord, dataOffset: number, metaBytes: Uint8Array | undefined): void {
    this.placeCopied(rec, dataOffset, metaBytes);
    this.addCopied(name, rec);
  }

  /**
   * Puts a copied record in the index being built before its bytes are
   * copied (`placeCopied` sets where they went): the index receives records
   * in the order they are added, which a copy in data order would lose.
   */
  addCopied(name: string, rec: PendingRecord): void {
    this.records.set(name, rec);
  }

  /** Records where the bytes of a copied record went: its stored bytes at `dataOffset`, its meta bytes verbatim. */
  placeCopied(rec: PendingRecord, dataOffset: number, metaBytes: Uint8Array | undefined): void {
    let metaOffset = 0;
    if (metaBytes && metaBytes.length > 0) {
      metaOffset = this.meta.length;
      this.meta.append(metaBytes);
    }
    rec.dataOffset = rec.storedSize > 0 && !(rec.flags & FLAG_EXTERNAL) ? dataOffset : 0;
    rec.metaOffset = metaOffset;
    rec.metaRelative = rec.metaLength > 0;
  }

  /**
   * Writes META and the complete INDEX and returns the footer to write last
   * (the caller decides when: after a durability barrier, for append).
   */
  async finish(link: {
    prevFooterOffset: number;
    generation: number;
  }): Promise<{ footer: Uint8Array; stats: GenerationStats; fields: V2Footer }> {
    const out = this.out;
    const dataLength = out.position - this.start;
    const metaStart = out.position;
    for await (const chunk of this.meta.read()) await out.write(chunk);
    this.meta.dispose();
    const metaLength = out.position - metaStart;
    const list: PendingRecord[] = [];
    let live = this.carried?.liveBytes ?? 0;
    for (const r of this.records.values()) {
      if (r.metaRelative) {
        r.metaOffset += metaStart;
        r.metaRelative = false;
      }
      if (!(r.flags & FLAG_EXTERNAL)) live += r.storedSize;
      live += r.metaLength;
      list.push(r);
    }
    this.records.clear();
    const indexStart = out.position;
    // Carried records come out as their bytes, in page and name order, the new ones merged in: the builder then has nothing to sort.
    const source = this.carried ? this.carried.merged(list) : recordsOf(list);
    // Names are unique: the records map is keyed by name.
    const index = planV2Index(source, { duplicates: "unique" });
    for (const chunk of index.chunks()) await out.write(chunk);
    const indexLength = out.position - indexStart;
    const fields: V2Footer = {
      pageBits: index.pageBits,
      requiredFeatures: 0,
      dataStart: this.start,
      dataLength,
      metaStart,
      metaLength,
      indexStart,
      indexLength,
      entryCount: source.count,
      prevFooterOffset: link.prevFooterOffset,
      archiveLength: out.position + V2_FOOTER_SIZE,
      rootHash: index.rootHash,
      generation: link.generation,
    };
    return {
      footer: encodeV2Footer(fields),
      fields,
      stats: {
        dataBytes: dataLength,
        metaBytes: metaLength,
        indexBytes: indexLength,
        indexPages: 2 ** index.pageBits,
        records: source.count,
        tombstones: this.tombstoneCount,
        archiveLength: out.position + V2_FOOTER_SIZE,
        liveBytes: HEADER_SIZE + live + indexLength + V2_FOOTER_SIZE,
      },
    };
  }

  dispose(): void {
    this.meta.dispose();
  }
}
