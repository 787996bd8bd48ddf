import { ByteReader, ByteWriter, utf8Decode } from "../bytes.js";
import { DesFormatError } from "../../errors.js";
import {
  FLAG_COMPRESSED,
  FLAG_EXTERNAL,
  FOOTER_MAGIC,
  HEADER_MAGIC,
  HEADER_SIZE,
  V1_FOOTER_SIZE,
  V1_RECORD_FIXED,
} from "../constants.js";
import type { EntryRecord } from "../record.js";

/** Section 2 of spec/des-format.md. */
export interface V1Footer {
  readonly dataStart: number;
  readonly dataLength: number;
  readonly metaStart: number;
  readonly metaLength: number;
  readonly indexStart: number;
  readonly indexLength: number;
  readonly fileCount: number;
}

export function encodeV1Header(): Uint8Array {
  return new ByteWriter(HEADER_SIZE).bytes(HEADER_MAGIC).u8(1).zeros(7).finish();
}

export function encodeV1Footer(f: V1Footer): Uint8Array {
  return new ByteWriter(V1_FOOTER_SIZE)
    .bytes(FOOTER_MAGIC)
    .u8(1)
    .zeros(7)
    .u64(f.dataStart)
    .u64(f.dataLength)
    .u64(f.metaStart)
    .u64(f.metaLength)
    .u64(f.indexStart)
    .u64(f.indexLength)
    .u64(f.fileCount)
    .finish();
}

/** Decodes and validates a v1 footer (the 72 bytes at `archiveSize - 72`). */
export function decodeV1Footer(bytes: Uint8Array, archiveSize: number): V1Footer {
  const r = new ByteReader(bytes, "v1 footer");
  r.skip(16); // magic + version + reserved, checked by the caller's detection
  const f: V1Footer = {
    dataStart: r.u64("data_start"),
    dataLength: r.u64("data_length"),
    metaStart: r.u64("meta_start"),
    metaLength: r.u64("meta_length"),
    indexStart: r.u64("index_start"),
    indexLength: r.u64("index_length"),
    fileCount: r.u64("file_count"),
  };
  const footerStart = archiveSize - V1_FOOTER_SIZE;
  const ok =
    f.dataStart >= HEADER_SIZE &&
    f.dataStart + f.dataLength <= f.metaStart &&
    f.metaStart + f.metaLength <= f.indexStart &&
    f.indexStart + f.indexLength <= footerStart &&
    f.fileCount * V1_RECORD_FIXED <= f.indexLength;
  if (!ok) throw new DesFormatError("v1 footer: sections are out of bounds or overlap");
  return f;
}

export interface V1RecordInput {
  readonly name: Uint8Array;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly metaOffset: number;
  readonly metaLength: number;
  readonly flags: number;
}

export function encodeV1Record(w: ByteWriter, rec: V1RecordInput): void {
  w.u16(rec.name.length)
    .bytes(rec.name)
    .u64(rec.dataOffset)
    .u64(rec.dataLength)
    .u64(rec.metaOffset)
    .u64(rec.metaLength)
    .u32(rec.flags);
}

/**
 * Decodes every record of a v1 index. Records are checked against the
 * archive's layout before anything else trusts them.
 */
export function decodeV1Index(index: Uint8Array, footer: V1Footer, archiveSize: number): EntryRecord[] {
  const r = new ByteReader(index, "v1 index");
  const limit = archiveSize - V1_FOOTER_SIZE;
  const records: EntryRecord[] = [];
  while (r.remaining > 0) {
    if (records.length >= footer.fileCount) r.fail(`more records than file_count ${footer.fileCount}`);
    const nameLen = r.u16();
    if (nameLen === 0) r.fail(`record ${records.length} has an empty name`);
    const name = utf8Decode(r.take(nameLen), `v1 record ${records.length} name`);
    const dataOffset = r.u64("data_offset");
    const dataLength = r.u64("data_length");
    const metaOffset = r.u64("meta_offset");
    const metaLength = r.u64("meta_length");
    const flags = r.u32();
    const external = (flags & FLAG_EXTERNAL) !== 0;
    if (!external && dataLength > 0 && (dataOffset < HEADER_SIZE || dataOffset + dataLength > limit)) {
      r.fail(`record ${JSON.stringify(name)}: data range outside the archive`);
    }
    if (metaLength > 0 && (metaOffset < HEADER_SIZE || metaOffset + metaLength > limit)) {
      r.fail(`record ${JSON.stringify(name)}: meta range outside the archive`);
    }
    records.push({
      name,
      flags,
      // Flag 0x02 is Python's compression, whose codec v1 does not record (spec 2.4): unreadable, not raw.
      compression: flags & FLAG_COMPRESSED ? undefined : "none",
      size: dataLength,
      storedSize: dataLength,
      dataOffset: external ? 0 : dataOffset,
      dataHash: undefined,
      metaOffset,
      metaLength,
      metaHash: undefined,
      externalKey: undefined,
    });
  }
  if (records.length !== footer.fileCount) {
    r.fail(`${records.length} records, footer says ${footer.fileCount}`);
  }
  return records;
}
