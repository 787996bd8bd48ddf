import fs from "node:fs";
import path from "node:path";
import { DesInvalidArgumentError, throwIfAborted } from "../errors.js";
import { readBatchesAhead } from "./read-ahead.js";
import { DesWriter, addPacked, canAddPacked } from "./writer.js";
import type { WriterOptions, WriterStats } from "./writer.js";
import type { ByteSink } from "../io/sink.js";

export interface PackDirectoryOptions extends WriterOptions {
  /**
   * How far reading runs ahead of writing: each of the (up to two) reader
   * threads fills this many 2 MiB buffers in rotation while earlier ones are
   * hashed and written. Default 4 (16 MiB with two threads); minimum 2.
   */
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
 * Read-ahead buffer size. Smaller buffers come back to their reader sooner
 * (a buffer returns once written), so the threads wait less; 2 MiB measured
 * best against 1 and 4 MiB for trees of small files.
 */
const BUFFER_BYTES = 2 << 20;

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

interface WalkEntry {
  /** The name, plus "/" for a directory: sorting by it sorts the whole tree (see SortedWalk). */
  readonly key: string;
  readonly name: string;
  readonly dir: boolean;
}

/**
 * Walks a tree depth-first, handing out file names already in global UTF-8
 * order, a few at a time, so packing starts before the walk ends and the
 * whole list is never held. Each directory's entries are sorted with a "/"
 * after directory names: every path under directory `d` starts with `d/`,
 * so comparing `d/` with a sibling decides the order of all of them against
 * it, and depth-first order is the sorted order of full paths.
 */
class SortedWalk {
  private readonly stack: { dir: string; prefix: string; entries: WalkEntry[]; next: number }[] = [];

  private constructor(private readonly filter?: (name: string, fullPath: string) => boolean) {}

  static async open(root: string, filter?: (name: string, fullPath: string) => boolean): Promise<SortedWalk> {
    const st = await fs.promises.stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw new DesInvalidArgumentError(`${root} is not a directory`);
    const w = new SortedWalk(filter);
    w.enter(root, "");
    return w;
  }

  /**
   * Reads one directory synchronously: a few tens of microseconds for a
   * directory of a hundred files, where an asynchronous readdir would wait
   * for a thread-pool round trip (and for the event loop, busy writing), and
   * reading ahead would stall for names.
   */
  private enter(dir: string, prefix: string): void {
    const items = fs.readdirSync(dir, { withFileTypes: true });
    const entries: WalkEntry[] = [];
    for (const item of items) {
      if (item.isDirectory()) entries.push({ key: `${item.name}/`, name: item.name, dir: true });
      else if (item.isFile()) entries.push({ key: item.name, name: item.name, dir: false });
    }
    this.stack.push({ dir, prefix, entries: sortUtf8(entries), next: 0 });
  }

  /** Up to `max` more names, in order; an empty array at the end. */
  async next(max: number): Promise<string[]> {
    const out: string[] = [];
    while (out.length < max && this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1]!;
      const e = top.entries[top.next++];
      if (!e) {
        this.stack.pop();
        continue;
      }
      const name = top.prefix ? `${top.prefix}/${e.name}` : e.name;
      if (e.dir) this.enter(path.join(top.dir, e.name), name);
      else if (!this.filter || this.filter(name, path.join(top.dir, e.name))) out.push(name);
    }
    return out;
  }
}

/**
 * Sorts entries by the UTF-8 bytes of their keys without encoding them.
 * UTF-16 code unit order is UTF-8 byte order except between a surrogate (an
 * astral character, 4 UTF-8 bytes) and U+E000..U+FFFF (3 bytes), so only
 * keys holding such characters need the slower comparison.
 */
function sortUtf8(entries: WalkEntry[]): WalkEntry[] {
  const high = /[\uD800-\uFFFF]/;
  if (!entries.some((e) => high.test(e.key))) return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rank = (u: number): number => (u < 0xd800 ? u : u < 0xe000 ? u + 0x2000 : u - 0x800);
  return entries.sort(({ key: a }, { key: b }) => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x !== y) return rank(x) - rank(y);
    }
    return a.length - b.length;
  });
}

/**
 * Packs every regular file under `root` into one archive. The tree is walked
 * in sorted order as packing goes; reader threads read the files ahead (see
 * read-ahead.ts) while this thread hashes and writes them, so per-file system
 * calls overlap with writing and the event loop stays free. Each batch the
 * readers return is added in one step (names checked and hashed, bodies
 * hashed, one sink write of the batch's buffer as it is: the bodies already
 * lie back to back, as DATA wants them), with the same bytes and errors as
 * one `add` per file. Any failure aborts the archive (nothing is left at
 * the target).
 */
export async function packDirectory(root: string, target: string | ByteSink, opts: PackDirectoryOptions = {}): Promise<WriterStats> {
  const walk = await SortedWalk.open(root, opts.filter);
  const buffers = Math.max(2, Math.floor(opts.readAhead ?? 4));
  const batches = readBatchesAhead(root, (max) => walk.next(max), {
    wholeLimit: READ_WHOLE,
    bufferBytes: BUFFER_BYTES,
    buffers,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  // Reading starts now (the reader threads take a few tens of milliseconds to
  // start), while the writer sets up its file and hasher.
  const first = batches.next();
  first.catch(() => undefined);
  try {
    return await DesWriter.write(target, opts, async (w) => {
      const packed = canAddPacked(w, READ_WHOLE);
      const addOpts = opts.signal ? { signal: opts.signal } : {};
      for (let next = await first; !next.done; next = await batches.next()) {
        const batch = next.value;
        throwIfAborted(opts.signal);
        const { names, lengths, bytes } = batch;
        const n = names.length;
        let released = false;
        let at = 0;
        // Runs of files read whole go in one step each; bigger files stream one by one.
        for (let k = 0; k < n; ) {
          if (lengths[k]! < 0) {
            await w.add(names[k]!, { path: path.join(root, names[k]!) }, addOpts);
            opts.onEntry?.(names[k]!, -1);
            k++;
            continue;
          }
          let j = k;
          let end = at;
          while (j < n && lengths[j]! >= 0) end += lengths[j++]!;
          if (packed) {
            // The last run hands the buffer over: the sink writes it as it is and releases it when done.
            const last = j === n;
            if (last) released = true;
            await addPacked(w, k === 0 && last ? names : names.slice(k, j), bytes.subarray(at, end), lengths.subarray(k, j), last ? batch.release : undefined);
          } else {
            for (let q = k, o = at; q < j; o += lengths[q++]!) await w.add(names[q]!, bytes.subarray(o, o + lengths[q]!), addOpts);
          }
          if (opts.onEntry) for (let q = k; q < j; q++) opts.onEntry(names[q]!, lengths[q]!);
          k = j;
          at = end;
        }
        // add() has copied or written every body by the time it resolves.
        if (!released) batch.release();
      }
    });
  } finally {
    // Stops the reader threads when packing ended early (a no-op after the last batch).
    await batches.return(undefined);
  }
}
