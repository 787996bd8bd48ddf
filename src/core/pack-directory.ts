import fs from "node:fs";
import path from "node:path";
import { DesInvalidArgumentError } from "./errors.js";
import { DesWriter } from "./writer.js";
import type { EntryData, WriterOptions, WriterStats } from "./writer.js";
import type { ByteSink } from "./sink.js";

export interface PackDirectoryOptions extends WriterOptions {
  /** Files read ahead while earlier ones are written. Default 16. */
  readAhead?: number;
  /** Return false to leave a file out (its archive name and full path). */
  filter?: (name: string, fullPath: string) => boolean;
  /** Called after each file is added. */
  onEntry?: (name: string, size: number) => void;
  signal?: AbortSignal;
}

/** Files up to this size are read whole while earlier ones are written; bigger ones stream. */
const READ_WHOLE = 1 << 20;

/**
 * Lists the regular files under `root` as archive names: POSIX relative
 * paths, sorted by UTF-8 bytes so the same tree always packs to the same
 * archive. Symbolic links and special files are skipped.
 */
export async function listTree(root: string): Promise<{ name: string; fullPath: string; size: number }[]> {
  const out: { name: string; fullPath: string; size: number }[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const items = await fs.promises.readdir(dir, { withFileTypes: true });
    for (const item of items) {
      const full = path.join(dir, item.name);
      const name = prefix ? `${prefix}/${item.name}` : item.name;
      if (item.isDirectory()) await walk(full, name);
      else if (item.isFile()) out.push({ name, fullPath: full, size: 0 });
    }
  };
  const st = await fs.promises.stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new DesInvalidArgumentError(`${root} is not a directory`);
  await walk(root, "");
  out.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return out;
}

/**
 * Packs every regular file under `root` into one archive, reading files
 * ahead of the writer so disk latency overlaps with writing. Any failure
 * aborts the archive (nothing is left at the target).
 */
export async function packDirectory(root: string, target: string | ByteSink, opts: PackDirectoryOptions = {}): Promise<WriterStats> {
  const files = (await listTree(root)).filter((f) => opts.filter?.(f.name, f.fullPath) ?? true);
  const ahead = Math.max(1, opts.readAhead ?? 16);
  const load = async (fullPath: string): Promise<EntryData> => {
    const fh = await fs.promises.open(fullPath, "r");
    try {
      const { size } = await fh.stat();
      if (size > READ_WHOLE) return { path: fullPath };
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await fh.read(buf, got, size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, got);
    } finally {
      await fh.close();
    }
  };
  return DesWriter.write(target, opts, async (w) => {
    const queue: Promise<EntryData>[] = [];
    let next = 0;
    const refill = (): void => {
      while (queue.length < ahead && next < files.length) queue.push(load(files[next++]!.fullPath));
    };
    refill();
    // Reads that are already running must not reject unobserved if we stop early.
    try {
      for (const f of files) {
        const data = await queue.shift()!;
        refill();
        await w.add(f.name, data, { signal: opts.signal });
        opts.onEntry?.(f.name, data instanceof Uint8Array ? data.length : -1);
      }
    } finally {
      for (const p of queue) p.catch(() => undefined);
    }
  });
}
