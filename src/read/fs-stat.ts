import { decodeFsMeta, mtimeMsOf } from "../format/fs-meta.js";
import type { FsKind, FsMeta } from "../format/fs-meta.js";
import type { DesReader } from "./reader.js";

/** What an entry was on disk when packed (spec: "File-system metadata"). */
export interface FileStat {
  readonly name: string;
  readonly kind: FsKind;
  /** Body length in bytes (for a symlink: of its target). */
  readonly size: number;
  /** Permission bits, when recorded. */
  readonly mode: number | undefined;
  /** Modification time in milliseconds since the epoch, when recorded. */
  readonly mtimeMs: number | undefined;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /** Hard links: the entry this one is a second name for. */
  readonly linkTo: string | undefined;
  /** The decoded record, when the entry had one. */
  readonly fs: FsMeta | undefined;
}

/** Builds a FileStat from an entry's size and meta; entries without metadata are files (or directories, for names ending with "/"). */
export function toFileStat(name: string, size: number, meta: unknown): FileStat {
  const fs = decodeFsMeta(meta);
  return {
    name,
    kind: fs?.kind ?? (name.endsWith("/") ? "directory" : "file"),
    size,
    mode: fs?.mode,
    mtimeMs: fs ? mtimeMsOf(fs) : undefined,
    uid: fs?.uid,
    gid: fs?.gid,
    linkTo: fs?.linkTo,
    fs,
  };
}

/**
 * File-system metadata of many entries, in the order asked, with one
 * coalesced read of their metas. Missing names are skipped.
 */
export async function fileStatMany(
  reader: DesReader,
  names: readonly string[],
  opts: { signal?: AbortSignal } = {},
): Promise<FileStat[]> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  const metas = await reader.getMetaMany(names, { missing: "skip", ...signal });
  const out: FileStat[] = [];
  for (const name of names) {
    if (!metas.has(name)) continue;
    const st = await reader.stat(name, signal);
    out.push(toFileStat(name, st.size, metas.get(name)));
  }
  return out;
}

/** File-system metadata of one entry (kind, mode, mtime, owner, hard link). */
export async function fileStat(
  reader: DesReader,
  name: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FileStat> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  const [st, meta] = await Promise.all([reader.stat(name, signal), reader.getMeta(name, signal)]);
  return toFileStat(name, st.size, meta);
}
