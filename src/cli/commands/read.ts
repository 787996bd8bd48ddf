import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { toFileStat } from "../../read/fs-stat.js";
import type { FileStat } from "../../read/fs-stat.js";
import { FLAG_EXTERNAL } from "../../format/constants.js";
import { openArchive } from "../archive.js";
import type { RemoteOptions } from "../archive.js";
import { CliError, Out, escapeName, humanBytes, writeStdout } from "../output.js";
import { pageCount, recordBatches } from "../records.js";
import { trackingSelector } from "../select.js";

export interface ListFlags extends RemoteOptions {
  readonly long: boolean;
  readonly json: boolean;
  readonly sort: boolean;
}

const KIND_CHAR = { file: "-", directory: "d", symlink: "l", hardlink: "h" } as const;

function modeString(st: FileStat): string {
  const m = st.mode;
  if (m === undefined) return `${KIND_CHAR[st.kind]}?????????`;
  const rwx = (b: number, s: boolean, sc: string): string =>
    `${b & 4 ? "r" : "-"}${b & 2 ? "w" : "-"}${s ? (b & 1 ? sc : sc.toUpperCase()) : b & 1 ? "x" : "-"}`;
  return (
    KIND_CHAR[st.kind] +
    rwx((m >> 6) & 7, (m & 0o4000) !== 0, "s") +
    rwx((m >> 3) & 7, (m & 0o2000) !== 0, "s") +
    rwx(m & 7, (m & 0o1000) !== 0, "t")
  );
}

function timeString(ms: number | undefined): string {
  if (ms === undefined) return "                ";
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** `ls`: streams names page by page (first line after one page read); `-l` adds mode, size, time, codec. */
export async function listCommand(archive: string, patterns: readonly string[], flags: ListFlags): Promise<number> {
  // Each page is read once: a small page cache keeps memory flat whatever the archive's size.
  const a = await openArchive(archive, flags, { pageCacheBytes: 4 << 20 });
  const out = new Out();
  const sel = trackingSelector(patterns);
  try {
    const r = a.reader;
    let batches: AsyncIterable<
      { name: string; size: number; flags: number; compression: string | undefined; storedSize: number }[]
    > = recordBatches(r);
    if (flags.sort) {
      const names = await r.list();
      batches = (async function* () {
        for (let i = 0; i < names.length; i += 4096)
          yield (await Promise.all(names.slice(i, i + 4096).map((n) => r.stat(n)))).map((s) => ({
            ...s,
            compression: s.compression,
          }));
      })();
    }
    let first = true;
    for await (const batch0 of batches) {
      const batch = sel ? batch0.filter((e) => sel.test(e.name)) : batch0;
      if (batch.length === 0) continue;
      if (!flags.long && !flags.json) {
        for (const e of batch) await out.line(escapeName(e.name));
        // The first names go out as soon as they are decoded; then in 64 KiB writes.
        if (first) await out.flush();
        first = false;
        continue;
      }
      const metas = await r.getMetaMany(batch.map((e) => e.name));
      const sts = batch.map((e) => toFileStat(e.name, e.size, metas.get(e.name)));
      const linkNames = sts.filter((s) => s.kind === "symlink" && s.size <= 4096).map((s) => s.name);
      const targets = linkNames.length > 0 ? await r.getMany(linkNames) : new Map<string, Uint8Array>();
      for (let k = 0; k < batch.length; k++) {
        const e = batch[k]!;
        const st = sts[k]!;
        const target = targets.get(e.name);
        const linkText = target ? Buffer.from(target).toString("utf8") : undefined;
        if (flags.json) {
          await out.line(
            JSON.stringify({
              name: e.name,
              kind: st.kind,
              size: e.size,
              storedSize: e.storedSize,
              compression: e.compression ?? "unknown",
              external: (e.flags & FLAG_EXTERNAL) !== 0,
              ...(st.mode !== undefined ? { mode: `0${st.mode.toString(8)}` } : {}),
              ...(st.mtimeMs !== undefined ? { mtime: new Date(st.mtimeMs).toISOString() } : {}),
              ...(st.uid !== undefined ? { uid: st.uid, gid: st.gid } : {}),
              ...(linkText !== undefined ? { target: linkText } : {}),
              ...(st.linkTo !== undefined ? { linkTo: st.linkTo } : {}),
            }),
          );
        } else {
          const codec = (e.flags & FLAG_EXTERNAL ? "ext" : (e.compression ?? "?")).padEnd(6);
          const tail =
            linkText !== undefined
              ? ` -> ${escapeName(linkText)}`
              : st.linkTo !== undefined
                ? ` link to ${escapeName(st.linkTo)}`
                : "";
          await out.line(
            `${modeString(st)} ${String(e.size).padStart(12)} ${timeString(st.mtimeMs)} ${codec} ${escapeName(e.name)}${tail}`,
          );
        }
      }
    }
    await out.flush();
    sel?.requireAllMatched();
    return 0;
  } finally {
    await a.close();
  }
}

export interface CatFlags extends RemoteOptions {
  readonly output: string | undefined;
  readonly quiet: boolean;
}

/**
 * `cat` / `get`: entries to stdout, or one entry to `-o FILE`. Bytes reach
 * their destination only once verified: entries up to the reader's limit are
 * read whole and checked first; bigger ones stream (to stdout with a warning
 * that a damaged end is reported after the bytes; to -o FILE through a temp
 * file renamed once the checksum passed).
 */
export async function catCommand(archive: string, names: readonly string[], flags: CatFlags): Promise<number> {
  if (names.length === 0) throw new CliError("cat needs at least one entry name", 2);
  if (flags.output !== undefined && names.length !== 1) throw new CliError("-o takes one entry", 2);
  const a = await openArchive(archive, flags);
  try {
    const r = a.reader;
    // Every name is checked before any byte is written.
    const stats = await Promise.all(names.map((n) => r.stat(n)));
    const limit = 1 << 30;
    if (flags.output !== undefined) {
      const dest = path.resolve(flags.output);
      if (a.localPath && fs.existsSync(dest) && fs.realpathSync(dest) === fs.realpathSync(a.localPath))
        throw new CliError(`${flags.output} is the archive being read`);
      const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.des-tmp-${process.pid}`);
      const cleanup = (): void => fs.rmSync(tmp, { force: true });
      process.once("SIGINT", () => {
        cleanup();
        process.exit(130);
      });
      try {
        if (stats[0]!.size <= limit) fs.writeFileSync(tmp, await r.get(names[0]!), { flag: "wx" });
        else await pipeline(r.stream(names[0]!), fs.createWriteStream(tmp, { flags: "wx" }));
        fs.renameSync(tmp, dest);
      } catch (e) {
        cleanup();
        throw e;
      }
      return 0;
    }
    for (let i = 0; i < names.length; i++) {
      const st = stats[i]!;
      if (st.size <= limit) {
        await writeStdout(await r.get(names[i]!));
      } else {
        if (!flags.quiet)
          process.stderr.write(
            `des-pack: ${escapeName(names[i]!)} is ${humanBytes(st.size)}: streamed, so a damaged end is reported after its bytes were written\n`,
          );
        await pipeline(r.stream(names[i]!), process.stdout, { end: false });
      }
    }
    return 0;
  } finally {
    await a.close();
  }
}

export interface InfoFlags extends RemoteOptions {
  readonly json: boolean;
}

/** `info`: format, generations, entries, section sizes, index pages, overhead per entry. */
export async function infoCommand(archive: string, flags: InfoFlags): Promise<number> {
  const a = await openArchive(archive, flags);
  try {
    const r = a.reader;
    let entries = 0;
    let original = 0;
    let stored = 0;
    let external = 0;
    let metaBytes = 0;
    for await (const batch of recordBatches(r)) {
      for (const e of batch) {
        entries++;
        original += e.size;
        if (e.flags & FLAG_EXTERNAL) external++;
        else stored += e.storedSize;
        metaBytes += e.metaLength;
      }
    }
    const gens = await r.generations();
    const generations = gens.length;
    const space = r.formatVersion === 2 ? await r.spaceUsage() : undefined;
    const overhead = r.size - stored;
    const info = {
      archive,
      format: r.formatVersion,
      size: r.size,
      generations,
      entries,
      external,
      originalBytes: original,
      storedBytes: stored,
      metaBytes,
      ...(space
        ? { liveBytes: space.liveBytes, reclaimableBytes: space.reclaimableBytes, indexBytes: space.indexBytes }
        : {}),
      indexPages: await pageCount(r),
      overheadBytes: overhead,
      overheadPerEntry: entries ? Number((overhead / entries).toFixed(1)) : 0,
    };
    if (flags.json) {
      await writeStdout(JSON.stringify(info) + "\n");
      return 0;
    }
    const lines = [
      `format       v${info.format}${generations > 1 ? ` (${generations} generations)` : ""}`,
      `size         ${info.size} bytes (${humanBytes(info.size)})`,
      `entries      ${entries}${external ? ` (${external} external)` : ""}`,
      `content      ${humanBytes(original)} (${humanBytes(stored)} stored)`,
      `meta         ${humanBytes(metaBytes)}`,
      ...(space
        ? [
            `live / dead  ${humanBytes(space.liveBytes)} live, ${humanBytes(space.reclaimableBytes)} reclaimable by repack`,
          ]
        : []),
      `index pages  ${info.indexPages}`,
      `overhead     ${humanBytes(overhead)}, ${info.overheadPerEntry} bytes per entry`,
    ];
    await writeStdout(lines.join("\n") + "\n");
    return 0;
  } finally {
    await a.close();
  }
}

export interface VerifyFlags extends RemoteOptions {
  readonly json: boolean;
}

export async function verifyCommand(archive: string, flags: VerifyFlags): Promise<number> {
  const a = await openArchive(archive, flags);
  try {
    const report = await a.reader.verify();
    if (flags.json) {
      await writeStdout(JSON.stringify(report) + "\n");
      return report.ok ? 0 : 1;
    }
    const out = new Out();
    await out.line(
      `v${report.formatVersion}: ${report.entries} entries, ${report.dataChecked} bodies and ${report.metaChecked} metas checked, ${report.pages} index pages` +
        (report.externalSkipped ? `, ${report.externalSkipped} external entries not checked (no --external-dir)` : ""),
    );
    for (const p of report.problems)
      await out.line(
        `  ${p.code} ${p.name !== undefined ? escapeName(p.name) : p.page !== undefined ? `page ${p.page}` : ""}: ${p.message}`,
      );
    await out.line(report.ok ? "ok" : "FAILED");
    await out.flush();
    return report.ok ? 0 : 1;
  } finally {
    await a.close();
  }
}
