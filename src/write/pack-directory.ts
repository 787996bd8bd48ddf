import fs from "node:fs";
import path from "node:path";
import { DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { compressSync } from "../format/compression.js";
import { encodeFsMetaV2, fsMetaValue, splitMs } from "../format/fs-meta.js";
import type { FsMeta } from "../format/fs-meta.js";
import { STAT_FIELDS, readBatchesAhead } from "./read-ahead.js";
import { SortedWalk } from "./tree-walk.js";
import type { OtherEntry } from "./tree-walk.js";
import { DesWriter } from "./writer.js";
import { addPacked, canAddPacked } from "./packed.js";
import type { PackedMetas } from "./packed-add.js";
import type { AddOptions, WriterOptions, WriterStats } from "./writer.js";
import type { ByteSink } from "../io/sink.js";
import type { Compression } from "../format/constants.js";

export interface PackDirectoryOptions extends WriterOptions {
  /**
   * How far reading runs ahead of writing: each of the (up to two) reader
   * threads fills this many 2 MiB buffers in rotation while earlier ones are
   * hashed and written. Default 4 (16 MiB with two threads); minimum 2.
   */
  readAhead?: number;
  /** Return false to leave a file out (its archive name and full path; directories end with "/"). */
  filter?: (name: string, fullPath: string) => boolean;
  /** Called after each entry is added (size -1 for a file that was streamed). */
  onEntry?: (name: string, size: number) => void;
  /**
   * Store file-system metadata (spec: "File-system metadata"): kind, mode, mtime, uid/gid,
   * hard links; directories and symbolic links become entries of their own;
   * special files are skipped (see `onSkip`). Default false.
   */
  metadata?: boolean;
  /** With `metadata`: leave out uid and gid. */
  noOwner?: boolean;
  /** Follow symbolic links instead of storing them (linked folders are walked once). */
  followSymlinks?: boolean;
  /**
   * With `compress` gzip or brotli: leave already-compressed types (by name:
   * .gz, .zip, .png, .jpg, ...) stored as they are, and store any other body
   * compressed only when that is smaller.
   */
  autoCompress?: boolean;
  /** Put every name under this prefix (joined with "/"). */
  prefix?: string;
  /** Called once at the end with the special files left out (at most 100 named) and their count. */
  onSkip?: (names: readonly string[], count: number) => void;
  /**
   * Files never packed, by identity (device and inode, as `fs.stat` gives
   * them), whatever name they are reached by (hard links included). With a
   * path as the target, the archive being written is always left out (the
   * file it replaces by identity, temporary files beside it by name):
   * packing a tree into a file inside it never packs the archive into itself.
   */
  excludeFiles?: readonly { readonly dev: number; readonly ino: number }[];
  signal?: AbortSignal;
}

/** Files up to this size are read whole while earlier ones are written; bigger ones stream. */
const READ_WHOLE = 1 << 20;
/**
 * Read-ahead buffer size. Smaller buffers come back to their reader sooner
 * (a buffer returns once written), so the threads wait less; 2 MiB measured
 * best against 1 and 4 MiB for trees of small files.
 */
const BUFFER_BYTES = 2 << 20;

/** Names whose bodies are already compressed: compressing them again only costs time. */
const COMPRESSED_TYPES =
  /\.(?:gz|tgz|bz2|tbz2?|xz|txz|zst|lz4|lzma|br|7z|zip|jar|war|apk|rar|png|jpe?g|gif|webp|avif|heic|mp[34]|m4[av]|mkv|mov|avi|webm|ogg|opus|flac|aac|woff2?|pdf|docx|xlsx|pptx|odt|whl|nupkg|deb|rpm)$/i;

/**
 * Lists the regular files under `root` as archive names: POSIX relative
 * paths, sorted by UTF-8 bytes so the same tree always packs to the same
 * archive. Symbolic links and special files are skipped.
 */
export async function listTree(root: string): Promise<{ name: string; fullPath: string; size: number }[]> {
  const walk = await SortedWalk.open(root);
  const out: { name: string; fullPath: string; size: number }[] = [];
  for (let names = await walk.next(4096); names.length > 0; names = await walk.next(4096)) {
    for (const name of names) out.push({ name, fullPath: path.join(root, name), size: 0 });
  }
  return out;
}

function fsMetaOf(
  kind: FsMeta["kind"],
  mode: number,
  mtimeMs: number,
  uid: number | undefined,
  gid: number | undefined,
  linkTo?: string,
): FsMeta {
  const { mtimeSeconds, mtimeNanos } = splitMs(mtimeMs);
  const m: { -readonly [K in keyof FsMeta]: FsMeta[K] } = { kind, mode: mode & 0o7777, mtimeSeconds, mtimeNanos };
  if (uid !== undefined) m.uid = uid;
  if (gid !== undefined) m.gid = gid;
  if (linkTo !== undefined) m.linkTo = linkTo;
  return m;
}

/** Hard-link detection and the meta of each entry, for packDirectory with `metadata`. */
class MetaMaker {
  /** dev -> ino -> the first name of a file with more than one link. */
  private readonly firstName = new Map<number, Map<number, string>>();
  constructor(private readonly owner: boolean) {}

  /**
   * The metadata of a file from its stat numbers, `STAT_FIELDS` of them at
   * `at` in `stats`: mode, mtimeMs, uid, gid, dev, ino, nlink.
   */
  fileMeta(name: string, stats: ArrayLike<number>, at: number): FsMeta {
    const dev = stats[at + 4]!;
    const ino = stats[at + 5]!;
    let linkTo: string | undefined;
    if (stats[at + 6]! > 1) {
      // Numbers as keys (no "dev:ino" string per file): trees of hard links hold one per file.
      let byIno = this.firstName.get(dev);
      if (byIno === undefined) this.firstName.set(dev, (byIno = new Map()));
      linkTo = byIno.get(ino);
      if (linkTo === undefined) byIno.set(ino, name);
    }
    const u = this.owner ? stats[at + 2]! : undefined;
    const g = this.owner ? stats[at + 3]! : undefined;
    return fsMetaOf(linkTo !== undefined ? "hardlink" : "file", stats[at]!, stats[at + 1]!, u, g, linkTo);
  }

  other(e: OtherEntry, name: string): unknown {
    const s = e.stat;
    if (e.kind === "file")
      return fsMetaValue(this.fileMeta(name, [s.mode, s.mtimeMs, s.uid, s.gid, s.dev, s.ino, s.nlink], 0));
    return fsMetaValue(
      fsMetaOf(e.kind, s.mode, s.mtimeMs, this.owner ? s.uid : undefined, this.owner ? s.gid : undefined),
    );
  }
}

/** Whether a body is worth storing compressed: not an already-compressed type, and smaller once compressed. */
function worthCompressing(name: string, body: Uint8Array, codec: Compression, level: number | undefined): boolean {
  if (body.length < 64 || COMPRESSED_TYPES.test(name)) return false;
  // A sample decides for big bodies, the whole body for small ones.
  const sample = body.length > 256 << 10 ? body.subarray(0, 256 << 10) : body;
  return compressSync(codec, sample, level).length < sample.length;
}

/**
 * Packs every regular file under `root` into one archive (with `metadata`,
 * directories and symbolic links too). The tree is walked in sorted order as
 * packing goes; reader threads read the files ahead (see read-ahead.ts)
 * while this thread hashes and writes them, so per-file system calls overlap
 * with writing and the event loop stays free. Each batch the readers return
 * is added in one step (names checked and hashed, bodies hashed, one sink
 * write of the batch's buffer as it is: the bodies already lie back to back,
 * as DATA wants them), with the same bytes and errors as one `add` per
 * file. Any failure aborts the archive (nothing is left at the target).
 */
export async function packDirectory(
  root: string,
  target: string | ByteSink,
  opts: PackDirectoryOptions = {},
): Promise<WriterStats> {
  const metadata = opts.metadata ?? false;
  const prefix = opts.prefix ? opts.prefix.replace(/\/+$/, "") + "/" : "";
  if (prefix === "/") throw new DesInvalidArgumentError("prefix cannot be only slashes");
  for (const x of opts.excludeFiles ?? [])
    if (!Number.isFinite(x?.dev) || !Number.isFinite(x?.ino))
      throw new DesInvalidArgumentError("excludeFiles takes { dev, ino } numbers, as fs.stat gives them");
  // One spelling of the root for the walk and the reader threads (a root like "link/.." must not name two folders).
  const base = path.join(root, ".");
  const filter = withoutStaleTemps(target, opts.filter);
  const walk = await SortedWalk.open(base, {
    ...(filter ? { filter } : {}),
    metadata,
    followSymlinks: opts.followSymlinks ?? false,
  });
  const buffers = Math.max(2, Math.floor(opts.readAhead ?? 4));
  // The file a path target replaces (and any hard link to it) is left out by identity; the writer's
  // temporary file, made later beside it, by name (withoutStaleTemps).
  const exclude = [...(opts.excludeFiles ?? [])];
  if (typeof target === "string") {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(target, { throwIfNoEntry: false });
    } catch (e) {
      throw new DesIoError(`cannot stat ${target}: ${(e as Error).message}`, { cause: e });
    }
    if (st) exclude.push({ dev: st.dev, ino: st.ino });
  }
  const excluded = (dev: number, ino: number): boolean => exclude.some((x) => x.dev === dev && x.ino === ino);
  const batches = readBatchesAhead(base, (max) => walk.next(max), {
    wholeLimit: READ_WHOLE,
    bufferBytes: BUFFER_BYTES,
    buffers,
    // Excluding by identity needs each file's stat (taken by the reader threads, from the file they read).
    stats: metadata || exclude.length > 0,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const maker = new MetaMaker(!opts.noOwner);
  const codec = opts.compress ?? "none";
  const auto = (opts.autoCompress ?? false) && codec !== "none";
  // First reading starts now (the reader threads take a few tens of milliseconds to
  // start), while the writer sets up its file and hasher.
  const first = batches.next();
  first.catch(() => undefined);
  try {
    return await DesWriter.write(target, auto ? { ...opts, compress: "none" } : opts, async (w) => {
      const packed = canAddPacked(w, READ_WHOLE);
      const encoded = metadata && w.format === 2;
      const signal = opts.signal ? { signal: opts.signal } : {};
      const addOne = async (name: string, body: Uint8Array | { path: string }, meta: unknown): Promise<void> => {
        const o: AddOptions = { ...signal, ...(meta !== undefined ? { meta } : {}) };
        if (auto && body instanceof Uint8Array && worthCompressing(name, body, codec, opts.compressLevel))
          o.compress = codec;
        else if (auto && !(body instanceof Uint8Array) && !COMPRESSED_TYPES.test(name)) o.compress = codec;
        await w.add(prefix + name, body, o);
      };
      for (let next = await first; !next.done; next = await batches.next()) {
        const batch = next.value;
        throwIfAborted(opts.signal);
        const { names, lengths, bytes, stats } = batch;
        const n = names.length;
        const metaOf = (k: number): unknown =>
          metadata ? fsMetaValue(maker.fileMeta(names[k]!, stats, k * STAT_FIELDS)) : undefined;
        const metaBytesOf = (k: number): Uint8Array =>
          encodeFsMetaV2(maker.fileMeta(names[k]!, stats, k * STAT_FIELDS));
        let released = false;
        let at = 0;
        // Runs of files read whole go in one step each; bigger files stream one by one.
        const skip = (k: number): boolean => excluded(stats[k * STAT_FIELDS + 4]!, stats[k * STAT_FIELDS + 5]!);
        for (let k = 0; k < n;) {
          if (skip(k)) {
            if (lengths[k]! > 0) at += lengths[k]!;
            k++;
            continue;
          }
          if (lengths[k]! < 0) {
            await addOne(names[k]!, { path: path.join(base, names[k]!) }, metaOf(k));
            opts.onEntry?.(prefix + names[k]!, -1);
            k++;
            continue;
          }
          let j = k;
          let end = at;
          while (j < n && lengths[j]! >= 0 && !skip(j)) end += lengths[j++]!;
          if (packed && !auto) {
            // The last run hands the buffer over: the sink writes it as it is and releases it when done.
            const last = j === n;
            if (last) released = true;
            const runNames = k === 0 && last && !prefix ? names : names.slice(k, j).map((x) => prefix + x);
            // v2 metas of a run are encoded here, straight from the stat numbers (one per file).
            const count = j - k;
            const metas: PackedMetas | undefined = !metadata
              ? undefined
              : encoded
                ? { encoded: true, values: Array.from({ length: count }, (_, q) => metaBytesOf(k + q)) }
                : { encoded: false, values: Array.from({ length: count }, (_, q) => metaOf(k + q)) };
            await addPacked(
              w,
              runNames,
              bytes.subarray(at, end),
              lengths.subarray(k, j),
              last ? batch.release : undefined,
              metas,
            );
          } else {
            for (let q = k, o = at; q < j; o += lengths[q++]!)
              await addOne(names[q]!, bytes.subarray(o, o + lengths[q]!), metaOf(q));
          }
          if (opts.onEntry) for (let q = k; q < j; q++) opts.onEntry(prefix + names[q]!, lengths[q]!);
          k = j;
          at = end;
        }
        // add() has copied or written every body by the time it resolves.
        if (!released) batch.release();
      }
      // Directories, symbolic links and files reached through links, gathered by the walk.
      for (const e of walk.others) {
        throwIfAborted(opts.signal);
        if (e.kind === "file" && excluded(e.stat.dev, e.stat.ino)) continue;
        const meta = metadata ? maker.other(e, e.name) : undefined;
        if (e.kind === "directory") await w.add(prefix + e.name, new Uint8Array(0), { ...signal, meta });
        else if (e.kind === "symlink")
          await w.add(prefix + e.name, Buffer.from(e.target ?? "", "utf8"), { ...signal, meta });
        else await addOne(e.name, await readRegular(e.fullPath), meta);
        opts.onEntry?.(prefix + e.name, e.kind === "directory" ? 0 : e.stat.size);
      }
      opts.onSkip?.(walk.skipped, walk.skippedCount);
    });
  } finally {
    // Stops the reader threads when packing ended early (a no-op after the last batch).
    await batches.return(undefined);
  }
}

/** Reads a file reached through a symbolic link (the link was followed on purpose); big ones stream. */
async function readRegular(p: string): Promise<Uint8Array | { path: string }> {
  const fh = await fs.promises.open(p, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0)).catch((e: Error) => {
    throw new DesInvalidArgumentError(`cannot read ${p}: ${e.message}`);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new DesInvalidArgumentError(`cannot read ${p}: not a regular file`);
    if (st.size > READ_WHOLE) return { path: p };
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * `filter`, and for a path target also leaving out the temporary files an
 * interrupted earlier run left beside it (`.<name>.<pid>-<random>.tmp`).
 */
function withoutStaleTemps(
  target: string | ByteSink,
  filter: PackDirectoryOptions["filter"],
): PackDirectoryOptions["filter"] {
  if (typeof target !== "string") return filter;
  const dir = path.dirname(path.resolve(target));
  const prefix = `.${path.basename(target)}.`;
  return (name, full) => {
    const base = name.slice(name.lastIndexOf("/") + 1);
    if (base.startsWith(prefix) && base.endsWith(".tmp") && path.dirname(path.resolve(full)) === dir) return false;
    return filter ? filter(name, full) : true;
  };
}
