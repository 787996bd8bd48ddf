import { DesFormatError, DesIoError } from "../errors.js";
import { xxh64 } from "../format/hash.js";

/**
 * The journal of the daily store: an append-only file of records, each with
 * its length and an xxh64 checksum, fsynced once per group of concurrent
 * puts (spec: "Daily store journal").
 *
 *   HEADER (32): "DESJRNL1" | u8 version = 1 | u8 nodeId | u8 lastSeq | 5 zero
 *                | f64 lastMs | u64 journal sequence
 *   RECORD:      u32 bodyLength | body | u64 xxh64(bodyLength bytes + body)
 *   body:        f64 ms | u16 nameLength | name | u32 metaLength | meta (MessagePack) | data
 */
export const JOURNAL_MAGIC = Buffer.from("DESJRNL1", "latin1");
export const JOURNAL_HEADER = 32;
const RECORD_FIXED = 4 + 8 + 2 + 4 + 8;
/** Records above this are refused (the length field is 32 bits). */
export const MAX_RECORD_BODY = 0xffff_fff0;

export interface JournalRecord {
  readonly name: string;
  readonly ms: number;
  /** Absolute offsets in the journal file. */
  readonly metaOffset: number;
  readonly metaLength: number;
  readonly dataOffset: number;
  readonly dataLength: number;
}

export interface Watermark {
  readonly ms: number;
  readonly seq: number;
}

/**
 * Encodes one record; `start` is where it will sit in the file. `name` is
 * ASCII (a Snowflake name), written as its bytes. `alloc` gives the memory
 * for the whole record.
 */
export function encodeRecord(
  name: string,
  ms: number,
  meta: Uint8Array | undefined,
  data: Uint8Array,
  start: number,
  alloc: (length: number) => Buffer = Buffer.allocUnsafe,
): { bytes: Buffer; rec: JournalRecord } {
  const nameLength = name.length;
  const metaLength = meta?.length ?? 0;
  const body = 8 + 2 + nameLength + 4 + metaLength + data.length;
  if (body > MAX_RECORD_BODY) throw new DesIoError(`a record of ${body} bytes does not fit a journal`);
  const buf = alloc(4 + body + 8);
  buf.writeUInt32LE(body, 0);
  buf.writeDoubleLE(ms, 4);
  buf.writeUInt16LE(nameLength, 12);
  if (buf.write(name, 14, nameLength, "latin1") !== nameLength || !ASCII.test(name))
    throw new DesIoError(`journal names are ASCII, not ${JSON.stringify(name)}`);
  let o = 14 + nameLength;
  buf.writeUInt32LE(metaLength, o);
  o += 4;
  const metaOffset = o;
  if (meta) buf.set(meta, o);
  o += metaLength;
  const dataOffset = o;
  buf.set(data, o);
  o += data.length;
  buf.writeBigUInt64LE(xxh64(buf.subarray(0, o)), o);
  return {
    bytes: buf,
    rec: {
      name,
      ms,
      metaOffset: start + metaOffset,
      metaLength,
      dataOffset: start + dataOffset,
      dataLength: data.length,
    },
  };
}

const ASCII = /^[\x20-\x7e]*$/;

export function encodeHeader(nodeId: number, seq: number, last: Watermark | undefined): Buffer {
  const h = Buffer.alloc(JOURNAL_HEADER);
  JOURNAL_MAGIC.copy(h, 0);
  h[8] = 1;
  h[9] = nodeId;
  h[10] = last?.seq ?? 255;
  h.writeDoubleLE(last?.ms ?? -Infinity, 16);
  h.writeBigUInt64LE(BigInt(seq), 24);
  return h;
}

export interface ScanResult {
  readonly nodeId: number;
  readonly seq: number;
  /** The generator state when the journal was created (its records carry later ones). */
  readonly watermark: Watermark | undefined;
  readonly records: JournalRecord[];
  /** Bytes of header plus whole, valid records; anything after is a torn tail. */
  readonly validLength: number;
}

/** Reads a journal's header and its valid prefix of records. A bad header is a DesFormatError. */
export function scanJournal(bytes: Buffer, file: string): ScanResult {
  if (bytes.length < JOURNAL_HEADER || !bytes.subarray(0, 8).equals(JOURNAL_MAGIC) || bytes[8] !== 1) {
    throw new DesFormatError(`${file} is not a DES store journal`);
  }
  const nodeId = bytes[9]!;
  const headMs = bytes.readDoubleLE(16);
  const watermark: Watermark | undefined = Number.isFinite(headMs) ? { ms: headMs, seq: bytes[10]! } : undefined;
  const seq = Number(bytes.readBigUInt64LE(24));
  const records: JournalRecord[] = [];
  let o = JOURNAL_HEADER;
  while (o + RECORD_FIXED <= bytes.length) {
    const body = bytes.readUInt32LE(o);
    const end = o + 4 + body;
    if (body < 14 || end + 8 > bytes.length) break;
    if (xxh64(bytes.subarray(o, end)) !== bytes.readBigUInt64LE(end)) break;
    const ms = bytes.readDoubleLE(o + 4);
    const nameLength = bytes.readUInt16LE(o + 12);
    const metaAt = o + 14 + nameLength;
    if (metaAt + 4 > end) break;
    const metaLength = bytes.readUInt32LE(metaAt);
    const dataOffset = metaAt + 4 + metaLength;
    if (dataOffset > end) break;
    const name = bytes.toString("utf8", o + 14, metaAt);
    records.push({ name, ms, metaOffset: metaAt + 4, metaLength, dataOffset, dataLength: end - dataOffset });
    o = end + 8;
  }
  return { nodeId, seq, watermark, records, validLength: o };
}
