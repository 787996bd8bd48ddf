import fs from "node:fs";
import path from "node:path";
import { DesInvalidArgumentError } from "../errors.js";

/** A walk item that is not a regular file read by the reader threads. */
export interface OtherEntry {
  /** Archive name relative to the root ("a/b" for a file or link, "a/b/" for a directory). */
  readonly name: string;
  readonly fullPath: string;
  readonly kind: "directory" | "symlink" | "file";
  readonly stat: fs.Stats;
  /** Symlinks: the link text as readlink gives it. */
  readonly target?: string;
}

export interface WalkOptions {
  readonly filter?: (name: string, fullPath: string) => boolean;
  /**
   * Collect directories and symbolic links (with their lstat) in `others`
   * instead of skipping them, and count special files in `skipped`.
   */
  readonly metadata?: boolean;
  /** Follow symbolic links: linked folders are walked (each folder once), linked files read. */
  readonly followSymlinks?: boolean;
}

interface WalkEntry {
  /** The name, plus "/" for a directory: sorting by it sorts the whole tree (see SortedWalk). */
  readonly key: string;
  readonly name: string;
  readonly type: "dir" | "file" | "link" | "other";
}

/**
 * Walks a tree depth-first, handing out file names already in global UTF-8
 * order, a few at a time, so packing starts before the walk ends and the
 * whole list is never held. Each directory's entries are sorted with a "/"
 * after directory names: every path under directory `d` starts with `d/`,
 * so comparing `d/` with a sibling decides the order of all of them against
 * it, and depth-first order is the sorted order of full paths.
 *
 * Regular files come out of `next`; with `metadata`, directories and links
 * (and, with `followSymlinks`, files reached through links) gather in
 * `others`, and special files (devices, FIFOs, sockets) are counted.
 */
export class SortedWalk {
  private readonly stack: { dir: string; prefix: string; entries: WalkEntry[]; next: number }[] = [];
  readonly others: OtherEntry[] = [];
  /** Special files left out, by archive name (at most the first 100 are named). */
  readonly skipped: string[] = [];
  skippedCount = 0;
  private readonly seenDirs = new Set<string>();

  private constructor(private readonly opts: WalkOptions) {}

  static async open(root: string, opts: WalkOptions = {}): Promise<SortedWalk> {
    const st = await fs.promises.stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw new DesInvalidArgumentError(`${root} is not a directory`);
    const w = new SortedWalk(opts);
    if (opts.followSymlinks) w.seenDirs.add(`${st.dev}:${st.ino}`);
    w.enter(path.join(root, "."), "");
    return w;
  }

  private skip(name: string): void {
    if (this.skipped.length < 100) this.skipped.push(name);
    this.skippedCount++;
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
      if (item.isDirectory()) entries.push({ key: `${item.name}/`, name: item.name, type: "dir" });
      else if (item.isFile()) entries.push({ key: item.name, name: item.name, type: "file" });
      else if (item.isSymbolicLink()) {
        if (!this.opts.followSymlinks) {
          if (this.opts.metadata) entries.push({ key: item.name, name: item.name, type: "link" });
          continue;
        }
        const st = fs.statSync(child(dir, item.name), { throwIfNoEntry: false });
        if (st?.isDirectory()) entries.push({ key: `${item.name}/`, name: item.name, type: "dir" });
        else entries.push({ key: item.name, name: item.name, type: "link" });
      } else if (this.opts.metadata) entries.push({ key: item.name, name: item.name, type: "other" });
    }
    this.stack.push({ dir, prefix, entries: sortUtf8(entries), next: 0 });
  }

  /** Up to `max` more regular-file names, in order; an empty array at the end. */
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
      const full = child(top.dir, e.name);
      if (e.type !== "dir" && this.opts.filter && !this.opts.filter(name, full)) continue;
      if (e.type === "dir") {
        if (this.opts.filter && !this.opts.filter(`${name}/`, full)) continue;
        const st = this.opts.metadata || this.opts.followSymlinks ? fs.statSync(full) : undefined;
        if (st && this.opts.followSymlinks) {
          const id = `${st.dev}:${st.ino}`;
          if (this.seenDirs.has(id)) continue; // a link cycle or a folder linked twice: walked once
          this.seenDirs.add(id);
        }
        if (st && this.opts.metadata)
          this.others.push({ name: `${name}/`, fullPath: full, kind: "directory", stat: st });
        this.enter(full, name);
      } else if (e.type === "file") out.push(name);
      else if (e.type === "link") {
        if (this.opts.followSymlinks) {
          const st = fs.statSync(full, { throwIfNoEntry: false });
          if (st?.isFile()) this.others.push({ name, fullPath: full, kind: "file", stat: st });
          else this.skip(name); // dangling, or a link to a special file
        } else {
          this.others.push({
            name,
            fullPath: full,
            kind: "symlink",
            stat: fs.lstatSync(full),
            target: fs.readlinkSync(full),
          });
        }
      } else this.skip(name);
    }
    return out;
  }
}

/**
 * `path.join(dir, name)` for a normalized `dir` and a name read from it (one
 * component): the same string, without normalizing it again for every file.
 */
function child(dir: string, name: string): string {
  if (dir === ".") return name;
  return dir.endsWith(path.sep) ? dir + name : dir + path.sep + name;
}

/**
 * Sorts entries by the UTF-8 bytes of their keys without encoding them.
 * UTF-16 code unit order is UTF-8 byte order except between a surrogate (an
 * astral character, 4 UTF-8 bytes) and U+E000..U+FFFF (3 bytes), so only
 * keys holding such characters need the slower comparison.
 */
function sortUtf8(entries: WalkEntry[]): WalkEntry[] {
  const high = /[\uD800-\uFFFF]/;
  if (!entries.some((e) => high.test(e.key)))
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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
