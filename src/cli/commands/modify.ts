import fs from "node:fs";
import path from "node:path";
import picomatch from "picomatch";
import { DesWriter, merge, repack } from "../../index.js";
import type { AppendReport, Compression, DesAppendWriter, RepackReport } from "../../index.js";
import { fsMetaValue, splitMs } from "../../format/fs-meta.js";
import { SortedWalk } from "../../write/tree-walk.js";
import { openArchive, parseArchive } from "../archive.js";
import type { RemoteOptions } from "../archive.js";
import { CliError, UsageError, escapeName, humanBytes } from "../output.js";
import { recordBatches } from "../records.js";
import { trackingSelector } from "../select.js";

export interface ModifyFlags extends RemoteOptions {
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly json: boolean;
}

/** Opens generation n+1 of a local or s3:// archive. */
async function openAppend(
  archive: string,
  opts: RemoteOptions,
  compress: Compression | undefined,
): Promise<{ w: DesAppendWriter; close: () => void }> {
  const ref = parseArchive(archive);
  const aopts = compress ? { compress } : {};
  if (ref.kind === "file") {
    if (!fs.existsSync(ref.path)) throw new CliError(`${ref.path}: no such archive`);
    return { w: await DesWriter.append(ref.path, aopts), close: () => undefined };
  }
  if (ref.kind === "s3") {
    const sdk = await import("@aws-sdk/client-s3");
    const s3 = await import("../../s3/index.js");
    const endpoint = opts.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    const client = new sdk.S3Client({
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
    });
    return {
      w: await DesWriter.append(s3.s3AppendTarget({ client, bucket: ref.bucket, key: ref.key }), aopts),
      close: () => client.destroy(),
    };
  }
  throw new UsageError(`${archive}: append and rm work on a local path or s3://bucket/key`);
}

/** Opens `archive` for append, runs `work` on the writer, then commits the new generation and reports it (or aborts). */
async function appendGeneration(
  command: "append" | "rm",
  archive: string,
  flags: ModifyFlags,
  compress: Compression | undefined,
  started: number,
  work: (w: DesAppendWriter) => Promise<void>,
): Promise<number> {
  const { w, close } = await openAppend(archive, flags, compress);
  try {
    await work(w);
    summary(command, await w.close(), flags, started);
    return 0;
  } catch (e) {
    await w.abort().catch(() => undefined);
    throw e;
  } finally {
    close();
  }
}

function summary(what: string, r: AppendReport | RepackReport, flags: ModifyFlags, started: number): void {
  const secs = (performance.now() - started) / 1000;
  if (flags.json)
    process.stdout.write(JSON.stringify({ command: what, ...r, seconds: Number(secs.toFixed(3)) }) + "\n");
  else if (!flags.quiet) {
    const gen = "generation" in r ? ` (generation ${r.generation})` : "";
    process.stderr.write(
      `${r.location}: ${r.added} added, ${r.deleted} removed${gen}, ${humanBytes(r.bytesWritten)} written, ${humanBytes(r.reclaimableBytes)} reclaimable, in ${secs.toFixed(2)} s\n`,
    );
  }
}

export interface AppendFlags extends ModifyFlags {
  readonly directory: string | undefined;
  readonly prefix: string | undefined;
  readonly replace: boolean;
  readonly compress: Compression | undefined;
  readonly metadata: boolean;
}

/** `append <archive> <inputs...>`: files and folders as a new generation (names as `pack` gives them for several inputs). */
export async function appendCommand(archive: string, inputs: readonly string[], flags: AppendFlags): Promise<number> {
  const started = performance.now();
  if (inputs.length === 0) throw new UsageError("append needs at least one input");
  const base = path.resolve(flags.directory ?? ".");
  const prefix = flags.prefix ? flags.prefix.replace(/\/+$/, "") + "/" : "";
  const items: { name: string; full: string; st: fs.Stats; link?: string }[] = [];
  for (const input of inputs) {
    const full = path.resolve(base, input);
    const st = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!st) throw new CliError(`${input}: no such file or folder`);
    const rel = path.relative(base, full).split(path.sep).join("/");
    if (rel.startsWith("..") || path.isAbsolute(rel))
      throw new CliError(`${input} is outside ${base}: name inputs inside -C`);
    if (st.isDirectory()) {
      const walk = await SortedWalk.open(full, { metadata: flags.metadata });
      const under = rel === "" ? "" : `${rel}/`;
      if (under && flags.metadata) items.push({ name: under, full, st });
      for (let names = await walk.next(4096); names.length > 0; names = await walk.next(4096)) {
        for (const n of names)
          items.push({ name: under + n, full: path.join(full, n), st: fs.lstatSync(path.join(full, n)) });
      }
      for (const o of walk.others)
        items.push({
          name: under + o.name,
          full: o.fullPath,
          st: o.stat,
          ...(o.target !== undefined ? { link: o.target } : {}),
        });
    } else if (st.isFile()) items.push({ name: rel, full, st });
    else if (st.isSymbolicLink() && flags.metadata) items.push({ name: rel, full, st, link: fs.readlinkSync(full) });
  }
  return appendGeneration("append", archive, flags, flags.compress, started, async (w) => {
    for (const it of items) {
      const name = prefix + it.name;
      if (w.has(name)) {
        if (!flags.replace) throw new CliError(`${name} is already in ${archive} (use --replace)`);
        await w.delete(name);
      }
      const kind = it.link !== undefined ? "symlink" : it.name.endsWith("/") ? "directory" : "file";
      const meta = flags.metadata
        ? fsMetaValue({ kind, mode: it.st.mode & 0o7777, ...splitMs(it.st.mtimeMs), uid: it.st.uid, gid: it.st.gid })
        : undefined;
      const body =
        it.link !== undefined ? Buffer.from(it.link) : kind === "directory" ? new Uint8Array(0) : { path: it.full };
      await w.add(name, body, meta !== undefined ? { meta } : {});
      if (flags.verbose) process.stderr.write(`${escapeName(name)}\n`);
    }
  });
}

/** `rm <archive> <names|globs...>`: deletes entries (a new generation with tombstones). */
export async function rmCommand(archive: string, patterns: readonly string[], flags: ModifyFlags): Promise<number> {
  const started = performance.now();
  const sel = trackingSelector(patterns)!;
  const ref = parseArchive(archive);
  if (ref.kind !== "file" && ref.kind !== "s3")
    throw new UsageError(`${archive}: rm works on a local path or s3://bucket/key`);
  return appendGeneration("rm", archive, flags, undefined, started, async (w) => {
    // The names to delete come from the generation being appended to (the writer read its index).
    const a = await openArchive(archive, flags);
    const names: string[] = [];
    try {
      for await (const batch of recordBatches(a.reader))
        for (const e of batch) if (sel.test(e.name)) names.push(e.name);
    } finally {
      await a.close();
    }
    sel.requireAllMatched();
    for (const n of names) {
      await w.delete(n);
      if (flags.verbose) process.stderr.write(`${escapeName(n)}\n`);
    }
  });
}

export interface RepackFlags extends ModifyFlags {
  readonly exclude: readonly string[];
  readonly format: 1 | 2 | undefined;
  readonly compress: Compression | undefined;
  readonly overwrite: boolean;
}

/** `repack <archive> [<out>]`: a compacted copy (in place when no <out>: written beside it, then renamed over it). */
export async function repackCommand(archive: string, out: string | undefined, flags: RepackFlags): Promise<number> {
  const started = performance.now();
  const ref = parseArchive(archive);
  if (ref.kind !== "file" || (out !== undefined && parseArchive(out).kind !== "file"))
    throw new UsageError("repack works on local paths");
  const excludes = flags.exclude.map((g) => picomatch(g, { dot: true }));
  const filter = excludes.length
    ? { filter: (e: { name: string }) => !excludes.some((m) => m(e.name) || m(e.name.replace(/\/$/, ""))) }
    : {};
  const opts = {
    ...filter,
    ...(flags.format ? { format: flags.format } : {}),
    ...(flags.compress ? { compress: flags.compress } : {}),
  };
  if (out !== undefined) {
    const r = await repack(ref.path, out, { ...opts, overwrite: flags.overwrite });
    summary("repack", r, flags, started);
    return 0;
  }
  const tmp = path.join(path.dirname(ref.path), `.${path.basename(ref.path)}.repack-${process.pid}`);
  try {
    const r = await repack(ref.path, tmp, opts);
    fs.renameSync(tmp, ref.path);
    summary("repack", { ...r, location: path.resolve(ref.path) }, flags, started);
    return 0;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export interface MergeFlags extends ModifyFlags {
  readonly onDuplicate: "error" | "first" | "last";
  readonly overwrite: boolean;
}

/** `merge <out> <archives...>`: one archive from several. */
export async function mergeCommand(out: string, archives: readonly string[], flags: MergeFlags): Promise<number> {
  const started = performance.now();
  if (archives.length === 0) throw new UsageError("merge needs at least one archive to read");
  for (const a of [out, ...archives])
    if (parseArchive(a).kind !== "file") throw new UsageError("merge works on local paths");
  const r = await merge(archives, out, { onDuplicate: flags.onDuplicate, overwrite: flags.overwrite });
  summary("merge", r, flags, started);
  return 0;
}
