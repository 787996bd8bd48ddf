import { ByteWriter } from "../bytes.js";
import { DesChecksumError, DesFormatError, DesUnsupportedError } from "../../errors.js";
import { xxh64 } from "../hash.js";
import {
  FOOTER_MAGIC,
  HEADER_MAGIC,
  HEADER_SIZE,
  MAX_PAGE_BITS,
  MIN_V2_RECORD,
  PAGE_OVERHEAD,
  V2_FOOTER_SIZE,
} from "../constants.js";

/** Section 3 of spec/des-format.md. */
export interface V2Footer {
  readonly pageBits: number;
  readonly requiredFeatures: number;
  readonly dataStart: number;
  readonly dataLength: number;
  readonly metaStart: number;
  readonly metaLength: number;
  readonly indexStart: number;
  readonly indexLength: number;
  readonly entryCount: number;
  readonly prevFooterOffset: number;
  readonly archiveLength: number;
  readonly rootHash: bigint;
  /** Section 3.8.1: 0 in generation 1 (and when unknown), else the generation's number. Optional for writers; decoded always. */
  readonly generation?: number;
}

/** Feature bits this reader implements (none are defined yet). */
const KNOWN_FEATURES = 0;

export function encodeV2Header(): Uint8Array {
  return new ByteWriter(HEADER_SIZE).bytes(HEADER_MAGIC).u8(2).zeros(7).finish();
}

export function encodeV2Footer(f: V2Footer): Uint8Array {
  const w = new ByteWriter(V2_FOOTER_SIZE)
    .bytes(FOOTER_MAGIC)
    .u8(2)
    .u8(f.pageBits)
    .zeros(2)
    .u32(f.requiredFeatures)
    .u64(f.dataStart)
    .u64(f.dataLength)
    .u64(f.metaStart)
    .u64(f.metaLength)
    .u64(f.indexStart)
    .u64(f.indexLength)
    .u64(f.entryCount)
    .u64(f.prevFooterOffset)
    .u64(f.archiveLength)
    .u64big(f.rootHash)
    .u64(f.generation ?? 0)
    .zeros(16);
  w.u64big(xxh64(w.view_()));
  return w.finish();
}

/**
 * Decodes and validates a v2 footer: its own checksum first, then every
 * bound it states. Read with one DataView and no helper calls: it runs once
 * per open, in a fresh process before anything is compiled.
 */
export function decodeV2Footer(bytes: Uint8Array, archiveSize: number): V2Footer {
  if (bytes.length !== V2_FOOTER_SIZE) throw new DesFormatError("v2 footer: wrong size");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getBigUint64(120, true) !== xxh64(bytes.subarray(0, 120))) throw new DesChecksumError({ kind: "footer" });
  const pageBits = bytes[9]!;
  const requiredFeatures = view.getUint32(12, true);
  // The u64 fields from offset 16 (offsets, lengths, counts) must be safe integers.
  const u64 = new Array<number>(9);
  for (let i = 0; i < 9; i++) {
    const hi = view.getUint32(20 + 8 * i, true);
    if (hi >= 0x200000) throw new DesFormatError(`v2 footer: ${U64_FIELDS[i]} is too large`);
    u64[i] = hi * 2 ** 32 + view.getUint32(16 + 8 * i, true);
  }
  const generation = view.getBigUint64(96, true);
  const f: V2Footer = {
    pageBits,
    requiredFeatures,
    dataStart: u64[0]!,
    dataLength: u64[1]!,
    metaStart: u64[2]!,
    metaLength: u64[3]!,
    indexStart: u64[4]!,
    indexLength: u64[5]!,
    entryCount: u64[6]!,
    prevFooterOffset: u64[7]!,
    archiveLength: u64[8]!,
    rootHash: view.getBigUint64(88, true),
    // A reserved-turned-optional field: a value no writer of this spec produces reads as 0 ("unknown").
    generation: generation <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(generation) : 0,
  };
  if ((requiredFeatures & ~KNOWN_FEATURES) !== 0) {
    throw new DesUnsupportedError(`archive requires features 0x${requiredFeatures.toString(16)} this reader lacks`);
  }
  if (f.archiveLength !== archiveSize) {
    throw new DesFormatError(`v2 footer: archive_length ${f.archiveLength} but the archive has ${archiveSize} bytes`);
  }
  if (pageBits > MAX_PAGE_BITS) throw new DesFormatError(`v2 footer: page_bits ${pageBits} > ${MAX_PAGE_BITS}`);
  const rootLength = 4 * 2 ** pageBits;
  const ok =
    f.dataStart >= HEADER_SIZE &&
    f.dataStart + f.dataLength <= f.metaStart &&
    f.metaStart + f.metaLength <= f.indexStart &&
    f.indexStart + f.indexLength === archiveSize - V2_FOOTER_SIZE &&
    rootLength < f.indexLength &&
    f.prevFooterOffset < f.dataStart &&
    f.entryCount * MIN_V2_RECORD <= f.indexLength - rootLength;
  if (!ok) throw new DesFormatError("v2 footer: sections are out of bounds or overlap");
  return f;
}

/** The footer's u64 fields from offset 16, in order (section 3.2). */
const U64_FIELDS = [
  "data_start",
  "data_length",
  "meta_start",
  "meta_length",
  "index_start",
  "index_length",
  "entry_count",
  "prev_footer_offset",
  "archive_length",
] as const;

export function rootLength(footer: V2Footer): number {
  return 4 * 2 ** footer.pageBits;
}

export function rootOffset(footer: V2Footer): number {
  return footer.indexStart + footer.indexLength - rootLength(footer);
}

/** Page table decoded from the root: absolute offset and length of each page. */
export interface PageTable {
  readonly offsets: Float64Array;
  readonly lengths: Uint32Array;
}

export function decodeRoot(root: Uint8Array, footer: V2Footer): PageTable {
  if (xxh64(root) !== footer.rootHash) throw new DesChecksumError({ kind: "root" });
  const count = 2 ** footer.pageBits;
  if (root.length !== 4 * count) throw new DesFormatError(`v2 root: ${root.length} bytes, expected ${4 * count}`);
  // One flat loop over a DataView: it runs once per open, before anything is compiled.
  const view = new DataView(root.buffer, root.byteOffset, root.byteLength);
  const offsets = new Float64Array(count);
  const lengths = new Uint32Array(count);
  let at = footer.indexStart;
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(4 * i, true);
    if (len < PAGE_OVERHEAD) throw new DesFormatError(`v2 root: page ${i} length ${len} is below ${PAGE_OVERHEAD}`);
    offsets[i] = at;
    lengths[i] = len;
    at += len;
  }
  if (at !== rootOffset(footer)) throw new DesFormatError("v2 root: page lengths do not add up to the index length");
  return { offsets, lengths };
}

export function encodeRoot(pageLengths: readonly number[]): Uint8Array {
  const w = new ByteWriter(pageLengths.length * 4);
  for (const len of pageLengths) w.u32(len);
  return w.finish();
}
