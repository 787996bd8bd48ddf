import fs from "node:fs";
import path from "node:path";
import picomatch from "picomatch";
import { packDirectory } from "../../index.js";
import type { Compression, PackDirectoryOptions, WriterStats } from "../../index.js";
import { archiveTarget } from "../archive.js";
import type { RemoteOptions } from "../archive.js";
import { CliError, Progress, UsageError, humanBytes } from "../output.js";

export interface PackFlags extends RemoteOptions {
  readonly directory: string | undefined;
  readonly prefix: string | undefined;
  readonly exclude: readonly string[];
  readonly include: readonly string[];
  readonly filesFrom: string | undefined;
  readonly compress: string;
  readonly level: number | undefined;
  readonly format: number;
  readonly bigFileThreshold: number | undefined;
  readonly followSymlinks: boolean;
  readonly metadata: boolean;
  readonly owner: boolean;
  readonly overwrite: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly json: boolean;
}

function compression(v: string): { compress: Compression; auto: boolean } {
  if (v === "none" || v === "gzip" || v === "brotli") return { compress: v, auto: false };
  if (v === "auto") return { compress: "gzip", auto: true };
  if (v === "auto-brotli") return { compress: "brotli", auto: true };
  throw new UsageError(`--compress must be none, gzip, brotli or auto, not ${JSON.stringify(v)}`);
}

/** Files named one per line (or NUL-separated) in a file, or "-" for stdin. */
function readList(file: string): string[] {
  const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
  return text.split(text.includes("\0") ? "\0" : /\r?\n/).filter((l) => l.length > 0);
}

export async function packCommand(operands: readonly string[], flags: PackFlags): Promise<number> {
  const started = performance.now();
  if (operands.length < 1) throw new UsageError("pack needs <inputs...> <archive>");
  const archive = operands[operands.length - 1]!;
  const inputs = operands.slice(0, -1);
  if (flags.filesFrom) inputs.push(...readList(flags.filesFrom));
  if (inputs.length === 0) throw new UsageError("pack needs at least one input before the archive (a folder or files)");
  if (flags.format !== 1 && flags.format !== 2) throw new UsageError("--format must be 1 or 2");
  const { compress, auto } = compression(flags.compress);
  if (flags.format === 1 && compress !== "none")
    throw new UsageError("--format 1 archives cannot be compressed (use --compress none)");
  const base = path.resolve(flags.directory ?? ".");
  const { target, writerOpts, close } = await archiveTarget(archive, flags.overwrite, flags);
  try {
    return await packInto(archive, inputs, base, target, writerOpts, flags, compress, auto, started);
  } finally {
    close?.();
  }
}

async function packInto(
  archive: string,
  inputs: readonly string[],
  base: string,
  target: string | import("../../index.js").ByteSink,
  writerOpts: import("../../index.js").WriterOptions,
  flags: PackFlags,
  compress: Compression,
  auto: boolean,
  started: number,
): Promise<number> {
  const excludes = flags.exclude.map((g) => picomatch(g, { dot: true }));
  const includes = flags.include.map((g) => picomatch(g, { dot: true }));
  // The archive being written (its temporary file, the file it replaces, any hard link to them) is
  // left out by packDirectory, by identity: no name checks here.
  const filter = (name: string): boolean => {
    const bare = name.endsWith("/") ? name.slice(0, -1) : name;
    const base = bare.slice(bare.lastIndexOf("/") + 1);
    if (excludes.some((m) => m(bare) || m(base))) return false;
    if (!name.endsWith("/") && includes.length > 0 && !includes.some((m) => m(bare) || m(base))) return false;
    return true;
  };

  const progress = new Progress("packing", { quiet: flags.quiet || archive === "-" });
  const log = flags.verbose ? (name: string): void => void process.stderr.write(`${name}\n`) : undefined;
  let skipped = 0;
  // Ctrl-C aborts the writer: its temporary file is removed and nothing is committed.
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once("SIGINT", onSigint);
  // `pack . - > file`: the file stdout writes to may be inside the tree.
  const stdoutFile = archive === "-" ? fileBehindStdout() : undefined;
  const opts: PackDirectoryOptions = {
    ...writerOpts,
    ...(stdoutFile ? { excludeFiles: [stdoutFile] } : {}),
    signal: stop.signal,
    format: flags.format as 1 | 2,
    compress,
    autoCompress: auto,
    metadata: flags.metadata,
    noOwner: !flags.owner,
    followSymlinks: flags.followSymlinks,
    ...(flags.level !== undefined ? { compressLevel: flags.level } : {}),
    ...(flags.bigFileThreshold !== undefined ? { bigFileThreshold: flags.bigFileThreshold } : {}),
    onEntry: (name, size) => {
      progress.add(1, size);
      log?.(name);
    },
    onSkip: (names, count) => {
      skipped += count;
      if (count > 0 && !flags.quiet) {
        process.stderr.write(
          `des-pack: warning: ${count} special file${count === 1 ? "" : "s"} (device, FIFO, socket or dangling link) left out: ${names.slice(0, 5).join(", ")}${count > 5 ? ", ..." : ""}\n`,
        );
      }
    },
  };

  let stats: WriterStats;
  const single = inputs.length === 1 ? path.resolve(base, inputs[0]!) : undefined;
  const singleDir = single !== undefined && fs.statSync(single, { throwIfNoEntry: false })?.isDirectory();
  try {
    if (singleDir) {
      stats = await packDirectory(single, target, {
        ...opts,
        filter,
        ...(flags.prefix ? { prefix: flags.prefix } : {}),
      });
    } else {
      const only = inputFilter(base, inputs);
      stats = await packDirectory(base, target, {
        ...opts,
        filter: (n) => only(n) && filter(n),
        ...(flags.prefix ? { prefix: flags.prefix } : {}),
      });
    }
  } catch (e) {
    progress.done();
    if (stop.signal.aborted) throw new CliError(`interrupted: nothing written to ${archive}`, 130);
    const m = (e as Error).message ?? "";
    if (flags.format === 1 && /v1 entry names cannot contain/.test(m)) {
      throw new CliError(
        `--format 1 archives hold a flat folder only (no subfolders, no links): ${m.replace(/^.*\(/, "").replace(/\)$/, "")} cannot be stored; use --format 2`,
      );
    }
    throw e;
  }
  process.off("SIGINT", onSigint);
  progress.done();
  const secs = (performance.now() - started) / 1000;
  if (flags.json) {
    const summary = {
      command: "pack",
      archive: stats.location,
      entries: stats.entries,
      originalBytes: stats.originalBytes,
      archiveBytes: stats.archiveBytes,
      format: stats.formatVersion,
      indexPages: stats.indexPages,
      skipped,
      seconds: Number(secs.toFixed(3)),
    };
    (archive === "-" ? process.stderr : process.stdout).write(JSON.stringify(summary) + "\n");
  } else if (!flags.quiet) {
    process.stderr.write(
      `${stats.location}: ${stats.entries} entries, ${humanBytes(stats.originalBytes)} in, ${humanBytes(stats.archiveBytes)} archive (v${stats.formatVersion}, ${stats.indexPages} index pages) in ${secs.toFixed(2)} s\n`,
    );
  }
  return 0;
}

/**
 * Several inputs (or files): names are paths relative to -C (or the current
 * folder), as tar gives them; only the inputs and what is under them are
 * walked (their parent folders are stored as folders).
 */
function inputFilter(base: string, inputs: readonly string[]): (name: string) => boolean {
  const wanted = inputs.map((input) => {
    const full = path.resolve(base, input);
    if (!fs.lstatSync(full, { throwIfNoEntry: false })) throw new CliError(`${input}: no such file or folder`);
    const rel = path.relative(base, full).split(path.sep).join("/");
    if (rel === "") return "";
    if (rel.startsWith("../") || rel === ".." || path.isAbsolute(rel))
      throw new CliError(`${input} is outside ${base}: name inputs inside -C`);
    return rel;
  });
  if (wanted.includes("")) return () => true;
  return (name) => {
    const bare = name.endsWith("/") ? name.slice(0, -1) : name;
    for (const w of wanted) {
      if (bare === w || bare.startsWith(`${w}/`)) return true;
      if (name.endsWith("/") && w.startsWith(`${bare}/`)) return true;
    }
    return false;
  };
}

/** The identity of the regular file stdout writes to, if it is one. */
function fileBehindStdout(): { dev: number; ino: number } | undefined {
  try {
    const st = fs.fstatSync(1);
    return st.isFile() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}
