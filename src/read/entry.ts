import { DesChecksumError, DesFormatError, DesUnsupportedError } from "../errors.js";
import { FLAG_EXTERNAL, KNOWN_FLAGS } from "../format/constants.js";
import type { Compression } from "../format/constants.js";
import { decompressSync } from "../format/compression.js";
import { xxh64 } from "../format/hash.js";
import { decodeMetaV1, decodeMetaV2 } from "../format/meta.js";
import type { MetaValue } from "../format/meta.js";
import type { EntryRecord } from "../format/record.js";

/** What `stat` reports of one entry. */
export interface EntryStat {
  readonly name: string;
  /** Original size in bytes. */
  readonly size: number;
  /** Bytes stored (after compression; in the external store for external entries). */
  readonly storedSize: number;
  /** Absolute offset of the stored bytes in the archive (0 for external and empty entries). */
  readonly offset: number;
  readonly flags: number;
  readonly compression: Compression | "unknown";
  readonly external: boolean;
  /** v2: the recorded key. v1: undefined until the meta is read (see `externalKeyOf`). */
  readonly externalKey: string | undefined;
  readonly metaLength: number;
}

const TWO_32 = 2 ** 32;

/**
 * Flag bits this reader does not know. Flags are varints of up to 53 bits
 * (v2) and JavaScript's bitwise operators see only the low 32: bits 32-52
 * are tested by arithmetic, never by `&`.
 */
export function unknownFlags(flags: number): boolean {
  if (flags >= TWO_32) return true;
  return (flags & ~KNOWN_FLAGS) !== 0;
}

export function checkFlags(rec: EntryRecord): void {
  if (unknownFlags(rec.flags)) {
    throw new DesUnsupportedError(
      `entry ${JSON.stringify(rec.name)} has flags 0x${rec.flags.toString(16)} this reader does not support`,
    );
  }
}

export function checkReadable(rec: EntryRecord): void {
  checkFlags(rec);
  if (rec.compression === undefined)
    throw new DesUnsupportedError(`entry ${JSON.stringify(rec.name)} uses a compression this reader does not support`);
  // Zero stored bytes read as empty without I/O, so only a record of size 0 may have none.
  if (rec.storedSize === 0 && rec.size !== 0) {
    throw new DesFormatError(`entry ${JSON.stringify(rec.name)} has size ${rec.size} but no stored bytes`);
  }
}

/** Checks the stored bytes against their checksum, then inflates them. */
export function decodeBody(rec: EntryRecord, stored: Uint8Array, verify: boolean): Uint8Array {
  if (verify && rec.dataHash !== undefined && xxh64(stored) !== rec.dataHash) {
    throw new DesChecksumError({ kind: "data", name: rec.name });
  }
  return rec.compression === "none" ? stored : decompressSync(rec.compression ?? "none", stored, rec.size, rec.name);
}

export function decodeMeta(
  version: 1 | 2,
  rec: EntryRecord,
  bytes: Uint8Array,
  verify: boolean,
  maps = false,
): MetaValue {
  if (version === 1)
    return maps ? (decodeMetaV1(bytes, rec.name, { maps: true }) as MetaValue) : decodeMetaV1(bytes, rec.name);
  if (verify && xxh64(bytes) !== rec.metaHash) {
    throw new DesChecksumError({ kind: "meta", name: rec.name });
  }
  return decodeMetaV2(bytes, rec.name);
}

export function isExternal(rec: EntryRecord): boolean {
  return (rec.flags & FLAG_EXTERNAL) !== 0;
}

export function toStat(r: EntryRecord): EntryStat {
  return {
    name: r.name,
    size: r.size,
    storedSize: r.storedSize,
    offset: r.dataOffset,
    flags: r.flags,
    compression: r.compression ?? "unknown",
    external: isExternal(r),
    externalKey: r.externalKey,
    metaLength: r.metaLength,
  };
}
