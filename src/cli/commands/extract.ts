import fs from "node:fs";
import path from "node:path";
import type { DesReader } from "../../index.js";
import { toFileStat } from "../../read/fs-stat.js";
import type { FileStat } from "../../read/fs-stat.js";
import { openArchive } from "../archive.js";
import type { RemoteOptions } from "../archive.js";
import { Placer } from "../extract-files.js";
import { readBatch } from "../extract-read.js";
import { CliError, Out, Progress, escapeName, humanBytes } from "../output.js";
import { recordBatches } from "../records.js";
import { safeName } from "../safe-path.js";
import { trackingSelector } from "../select.js";
import { WritePool } from "../write-pool.js";
import type { PoolFile } from "../write-pool.js";

export interface ExtractFlags extends RemoteOptions {
  readonly directory: string;
  readonly stripComponents: number;
  readonly force: boolean;
  readonly samePermissions: boolean;
  readonly sameOwner: boolean;
  readonly allowUnsafeLinks: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly json: boolean;
}

/** Entries above this are streamed to a temp file instead of read whole. */
const STREAM_ABOVE = 64 << 20;
/** One batch of reads: this many entries or bytes at most. */
const BATCH_ENTRIES = 2048;
const BATCH_BYTES = 16 << 20;
/** Decoded bytes the reader holds at once within a batch (it reads and hands them over in waves of this size). */
const WAVE_BYTES = 4 << 20;

interface Job extends PoolFile {
  readonly p: Planned;
  readonly st: FileStat;
}

/** A checked entry; its path components are worked out again when needed (less memory per entry). */
class Planned {
  /** Set once this run has written the entry's file (a hard link may then point to it). */
  written = false;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly dir: boolean,
    private readonly strip: number,
  ) {}

  get parts(): readonly string[] {
    const s = safeName(this.name, this.strip);
    return "parts" in s ? s.parts : [];
  }
}

/**
 * Checks every selected name before anything is written: refused names
 * (absolute, "..", NUL, drive letters) and names that land on one path, or on
 * a file and a folder at once, fail the whole extract.
 */
async function plan(
  reader: DesReader,
  patterns: readonly string[],
  strip: number,
): Promise<{ planned: Planned[]; bytes: number }> {
  const sel = trackingSelector(patterns);
  const planned: Planned[] = [];
  // Path on disk -> first name that claimed it, and which paths must be folders.
  const claimed = new Map<string, string>();
  const mustBeDir = new Map<string, string>();
  let bytes = 0;
  for await (const batch of recordBatches(reader)) {
    for (const r of batch) {
      if (sel && !sel.test(r.name)) continue;
      const s = safeName(r.name, strip);
      if ("refused" in s) {
        if (s.refused === "") continue; // stripped away entirely
        throw new CliError(`refusing to extract ${JSON.stringify(r.name)}: the name ${s.refused}`);
      }
      const key = s.parts.join("/");
      const other = claimed.get(key);
      if (other !== undefined) {
        const both = other.endsWith("/") && s.dir;
        if (!both)
          throw new CliError(
            `refusing to extract: ${JSON.stringify(other)} and ${JSON.stringify(r.name)} both land on ${JSON.stringify(key)}`,
          );
        continue;
      }
      claimed.set(key, r.name);
      if (!s.dir && mustBeDir.has(key))
        throw new CliError(
          `refusing to extract: ${JSON.stringify(r.name)} is a file but ${JSON.stringify(mustBeDir.get(key))} needs it to be a folder`,
        );
      if (s.dir) mustBeDir.set(key, r.name);
      for (let i = 1; i < s.parts.length; i++) {
        const parent = s.parts.slice(0, i).join("/");
        const c = claimed.get(parent);
        if (c !== undefined && !c.endsWith("/") && !mustBeDir.has(parent)) {
          throw new CliError(
            `refusing to extract: ${JSON.stringify(c)} is a file but ${JSON.stringify(r.name)} needs it to be a folder`,
          );
        }
        if (!mustBeDir.has(parent)) mustBeDir.set(parent, r.name);
      }
      planned.push(new Planned(r.name, r.size, s.dir, strip));
      bytes += r.size;
    }
  }
  // A file entry claimed before a later entry made its path a folder.
  for (const p of planned) {
    const key = p.parts.join("/");
    if (!p.dir && mustBeDir.has(key))
      throw new CliError(
        `refusing to extract: ${JSON.stringify(p.name)} is a file but ${JSON.stringify(mustBeDir.get(key))} needs it to be a folder`,
      );
  }
  sel?.requireAllMatched();
  return { planned, bytes };
}

export async function extractCommand(
  archive: string,
  patterns: readonly string[],
  flags: ExtractFlags,
): Promise<number> {
  const started = performance.now();
  // Pages are read in order, a batch at a time: a small cache is enough, and keeps memory flat.
  const a = await openArchive(archive, flags, { pageCacheBytes: 16 << 20 });
  const stop = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    stop.abort();
  };
  process.on("SIGINT", onSigint);
  const counts = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, failed: 0 };
  const failures: string[] = [];
  let placer: Placer | undefined;
  let pool: WritePool<Job> | undefined;
  const out = new Out();
  try {
    const reader = a.reader;
    const { planned, bytes: totalBytes } = await plan(reader, patterns, flags.stripComponents);
    fs.mkdirSync(flags.directory, { recursive: true });
    const root = fs.realpathSync(flags.directory);
    let archiveId: string | undefined;
    if (a.localPath) {
      const st = fs.statSync(a.localPath);
      archiveId = `${st.dev}:${st.ino}`;
    }
    const place = (placer = new Placer(root, {
      force: flags.force,
      samePermissions: flags.samePermissions,
      sameOwner: flags.sameOwner,
      allowUnsafeLinks: flags.allowUnsafeLinks,
      archiveId,
    }));
    const progress = new Progress("extracting", { quiet: flags.quiet, totalFiles: planned.length, totalBytes });
    const fail = (name: string, e: unknown): void => {
      counts.failed++;
      const msg = e instanceof Error ? e.message : String(e);
      if (failures.length < 20) failures.push(`${escapeName(name)}: ${msg}`);
    };
    const links: { p: Planned; st: FileStat; target: string }[] = [];
    const hard: { p: Planned; st: FileStat }[] = [];
    const verbose = async (p: string): Promise<void> => {
      if (flags.verbose) await out.line(escapeName(path.relative(root, p)));
    };
    // New files go through worker threads (unless owners are restored, which the main thread does).
    const retry: Job[] = [];
    pool = flags.sameOwner
      ? undefined
      : new WritePool<Job>((files, failed) => {
          const bad = new Set(failed.map((f) => f.file));
          for (const f of failed) {
            if (f.code === "EEXIST" || f.code === "ELOOP") retry.push(f.file);
            else fail(f.file.p.name, new Error(`${f.file.path}: ${f.message}`));
          }
          for (const f of files) {
            if (bad.has(f)) continue;
            f.p.written = true;
            counts.files++;
            counts.bytes += f.p.size;
            progress.add(1, f.p.size);
            if (flags.verbose) void out.line(escapeName(path.relative(root, f.path)));
          }
        });
    for (let i = 0; i < planned.length;) {
      // A batch of entries to read together.
      let j = i;
      let bytes = 0;
      while (j < planned.length && j - i < BATCH_ENTRIES && (j === i || bytes + planned[j]!.size <= BATCH_BYTES))
        bytes += planned[j++]!.size;
      const batch = planned.slice(i, j);
      i = j;
      const metas = await reader.getMetaMany(
        batch.map((p) => p.name),
        { signal: stop.signal },
      );
      const stats = new Map<string, FileStat>();
      for (const p of batch) stats.set(p.name, toFileStat(p.name, p.size, metas.get(p.name)));
      const small: string[] = [];
      for (const p of batch) {
        const st = stats.get(p.name)!;
        if (p.dir || st.kind === "directory") {
          try {
            await verbose(placer.makeDir(p.parts, st));
            counts.dirs++;
          } catch (e) {
            fail(p.name, e);
          }
        } else if (st.kind === "hardlink" && st.linkTo !== undefined) {
          hard.push({ p, st });
        } else if (p.size > STREAM_ABOVE && st.kind !== "symlink") {
          try {
            await verbose(await placer.streamFile(p.parts, reader, p.name, st, stop.signal));
            p.written = true;
            counts.files++;
            counts.bytes += p.size;
            progress.add(1, p.size);
          } catch (e) {
            if (interrupted) throw e;
            fail(p.name, e);
          }
        } else small.push(p.name);
      }
      const byName = new Map(batch.map((p) => [p.name, p]));
      // A damaged entry fails alone: the rest of the batch is still extracted.
      const take = async (name: string, body: Uint8Array): Promise<void> => {
        const p = byName.get(name)!;
        const st = stats.get(name)!;
        if (st.kind === "symlink") {
          links.push({ p, st, target: Buffer.from(body).toString("utf8") });
          return;
        }
        if (pool) {
          try {
            const at = place.ensureParents(p.parts);
            await pool.add(
              {
                path: path.join(at, p.parts[p.parts.length - 1]!),
                mode: place.modeOf(st, 0o644),
                mtime: st.mtimeMs !== undefined ? st.mtimeMs / 1000 : NaN,
                p,
                st,
              },
              body,
              // The body is not used again here: a big one is moved to the writer thread, not copied.
              { transfer: true },
            );
          } catch (e) {
            fail(name, e);
          }
          return;
        }
        try {
          const at = place.writeFile(p.parts, body, st);
          p.written = true;
          counts.files++;
          counts.bytes += body.length;
          progress.add(1, body.length);
          await verbose(at);
        } catch (e) {
          fail(name, e);
        }
      };
      await readBatch(reader, small, { signal: stop.signal, waveBytes: WAVE_BYTES }, take, fail);
      if (interrupted) throw new Error("interrupted");
    }
    if (pool) {
      await pool.drain();
      // Names that existed: the main thread decides (an error, or --force replaces them).
      for (const { p, st } of retry) {
        try {
          // Rare (the name existed): read the body again rather than hold every body until the end.
          const body = await reader.get(p.name, { signal: stop.signal });
          const at = placer.writeFile(p.parts, body, st);
          p.written = true;
          counts.files++;
          counts.bytes += body.length;
          await verbose(at);
        } catch (e) {
          fail(p.name, e);
        }
      }
    }
    // Hard links: to the file this run wrote under the first name, else the body itself
    // (never to anything else in DIR: a name there may lead anywhere).
    const targets = new Set(hard.map((h) => h.st.linkTo!));
    const byName = new Map<string, Planned>();
    if (targets.size > 0) for (const p of planned) if (targets.has(p.name)) byName.set(p.name, p);
    for (const { p, st } of hard) {
      try {
        const first = byName.get(st.linkTo!);
        if (first?.written) {
          await verbose(placer.makeHardLink(p.parts, path.join(root, ...first.parts)));
          counts.hardlinks++;
        } else {
          const body = await reader.get(p.name, { signal: stop.signal });
          await verbose(placer.writeFile(p.parts, body, { ...st, kind: "file" }));
          counts.files++;
          counts.bytes += body.length;
        }
        p.written = true;
        progress.add(1, p.size);
      } catch (e) {
        fail(p.name, e);
      }
    }
    // Links last: nothing is written after them, so none can redirect a later write.
    const made: { name: string; at: string }[] = [];
    for (const { p, st, target } of links) {
      try {
        const at = placer.makeSymlink(p.parts, target, st);
        made.push({ name: p.name, at });
        await verbose(at);
        counts.symlinks++;
        progress.add(1, 0);
      } catch (e) {
        fail(p.name, e);
      }
    }
    // Each was checked against the links made before it: check all again against the final tree.
    for (const { name, at } of made) {
      try {
        const e = placer.recheckSymlink(at);
        if (e === undefined) continue;
        counts.symlinks--;
        fail(name, e);
      } catch (e) {
        fail(name, e);
      }
    }
    placer.finishDirs();
    progress.done();
    await out.flush();
    for (const f of failures) process.stderr.write(`des-pack: ${f}\n`);
    if (counts.failed > failures.length)
      process.stderr.write(`des-pack: ... and ${counts.failed - failures.length} more\n`);
    const secs = (performance.now() - started) / 1000;
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({ command: "extract", archive, directory: root, ...counts, seconds: Number(secs.toFixed(3)) }) +
          "\n",
      );
    } else if (!flags.quiet) {
      process.stderr.write(
        `${counts.files} files, ${counts.dirs} folders, ${counts.symlinks + counts.hardlinks} links (${humanBytes(counts.bytes)}) extracted into ${root} in ${secs.toFixed(2)} s` +
          (counts.failed ? `; ${counts.failed} failed` : "") +
          "\n",
      );
    }
    return counts.failed ? 1 : 0;
  } catch (e) {
    // Files handed to the writer threads are finished (each is written whole), never left half-written.
    await pool?.drain().catch(() => undefined);
    if (interrupted) {
      const removed = placer?.cleanup() ?? 0;
      await out.flush().catch(() => undefined);
      throw new CliError(
        `interrupted: ${counts.files} files, ${counts.dirs} folders extracted into ${flags.directory} before the interrupt` +
          (removed ? `; ${removed} partial file${removed === 1 ? "" : "s"} removed` : ""),
        130,
      );
    }
    placer?.cleanup();
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    await pool?.close();
    await a.close().catch(() => undefined);
  }
}
