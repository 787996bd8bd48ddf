import { DesDuplicateError } from "../errors.js";
import type { DesIoError } from "../errors.js";
import { xxh64 } from "../format/hash.js";
import { encodeMetaV2 } from "../format/meta.js";
import { hashKey } from "./entry-table.js";
import type { EntryTable } from "./entry-table.js";
import { stageEntryName } from "./names.js";
import type { Output } from "./output.js";
import { v1MetaDocument } from "./v1-meta.js";

/** What a packed add needs of its writer (DesWriter builds one for itself). */
export interface WriterCore {
  readonly format: 1 | 2;
  readonly table: EntryTable;
  readonly out: Output;
  /** xxh64 of the name's UTF-8 bytes. */
  hashName(name: string): bigint;
  ensureOpen(): void;
  /** Poisons the writer; returns the error it now fails with. */
  poison(e: unknown): DesIoError;
  /** Enters the staged name as an entry with these fields (DesWriter's pushRow). */
  pushRow(
    name: string,
    nameLen: number,
    nameHash: bigint,
    key: number,
    flags: number,
    codec: number,
    size: number,
    stored: number,
    offset: number,
    dataHash: bigint,
    externalKey: string | undefined,
    meta: Uint8Array | undefined,
  ): void;
}

/**
 * The meta of packed entries, by position: values to encode as `add` would,
 * or (v2 writers only) v2 meta bytes encoded already.
 */
export type PackedMetas =
  | { readonly encoded: false; readonly values: readonly unknown[] }
  | { readonly encoded: true; readonly values: readonly (Uint8Array | undefined)[] };

/**
 * Adds entries whose bodies lie back to back in `bytes` (lengths[k] bytes
 * each), stored uncompressed and internal, exactly as one `add` per entry
 * would: names are checked, hashed and entered, bodies hashed, then all
 * the bytes go to the sink in one write. Stops at the first rejected name
 * (after adding and writing the ones before it) and throws its error.
 * With `release`, a sink that can (FileSink) keeps `bytes` without copying
 * and calls `release` once written; `release` is called exactly once.
 */
export async function addPackedRows(
  w: WriterCore,
  names: readonly string[],
  bytes: Uint8Array,
  lengths: ArrayLike<number>,
  release?: () => void,
  metas?: PackedMetas,
): Promise<void> {
  let handed = false;
  try {
    w.ensureOpen();
    const t = w.table;
    const base = w.out.position;
    let used = 0;
    let rejected: unknown;
    for (let k = 0; k < names.length; k++) {
      const name = names[k]!;
      const len = lengths[k]!;
      let nameLen: number;
      try {
        nameLen = stageEntryName(t, name, w.format);
      } catch (e) {
        rejected = e;
        break;
      }
      // The hash of the name's UTF-8 bytes (encoded straight into the hasher's memory).
      const nameHash = w.hashName(name);
      const key = hashKey(nameHash);
      if (w.format === 2 && t.hasStaged(nameLen, nameHash, key)) {
        rejected = new DesDuplicateError(name);
        break;
      }
      const hash = len > 0 ? xxh64(bytes.subarray(used, used + len)) : 0n;
      w.pushRow(
        name,
        nameLen,
        nameHash,
        key,
        0,
        0,
        len,
        len,
        base + used,
        hash,
        undefined,
        metaOf(w.format, metas, k, len),
      );
      used += len;
    }
    if (used > 0) {
      // Entries are in the table before their bytes are in the sink: a failure here poisons the writer.
      const chunk = used === bytes.length ? bytes : bytes.subarray(0, used);
      try {
        if (release) {
          handed = true;
          await w.out.writeRetained(chunk, release);
        } else {
          await w.out.write(chunk);
        }
      } catch (e) {
        throw w.poison(e);
      }
    }
    if (rejected !== undefined) throw rejected;
  } finally {
    if (!handed) release?.();
  }
}

/** The meta bytes of packed entry k (v1: the Python JSON document `add` writes, which states the size). */
function metaOf(format: 1 | 2, metas: PackedMetas | undefined, k: number, size: number): Uint8Array | undefined {
  if (format === 1) return v1MetaDocument(metas?.values[k], size, undefined);
  if (!metas) return undefined;
  if (metas.encoded) return metas.values[k];
  const given = metas.values[k];
  return given === undefined ? undefined : encodeMetaV2(given);
}
