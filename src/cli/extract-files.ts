import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { DesReader } from "../index.js";
import type { FileStat } from "../read/fs-stat.js";
import { dotDotAfterName, inside, linkStaysInside } from "./safe-path.js";

/** How files are put on disk. */
export interface PlaceOptions {
  readonly force: boolean;
  /** Restore permission bits exactly (else the umask applies). */
  readonly samePermissions: boolean;
  readonly sameOwner: boolean;
  readonly allowUnsafeLinks: boolean;
  /** The archive being read (dev:ino), which is never written. */
  readonly archiveId: string | undefined;
}

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const CREATE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW;
const UMASK = process.umask();
const ROOT = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * Writes entries under one target folder without ever following a symbolic
 * link that is already there, and keeps track of what is in flight so an
 * interrupt can remove it. Every method throws a one-line Error on failure.
 */
export class Placer {
  private readonly dirsOk = new Set<string>();
  private readonly dirMeta: { p: string; st: FileStat }[] = [];
  /** Temp files and new files being written (removed on interrupt). */
  readonly inFlight = new Set<string>();
  /** Partial files removed after a failure or an interrupt. */
  removed = 0;
  private seq = 0;

  constructor(
    readonly root: string,
    private readonly opts: PlaceOptions,
  ) {
    this.dirsOk.add(root);
  }

  modeOf(st: FileStat, fallback: number): number {
    const m = st.mode ?? fallback;
    // setuid/setgid/sticky only for root: an archive should not make set-id programs for a user.
    const bits = ROOT ? m & 0o7777 : m & 0o777;
    return this.opts.samePermissions ? bits : bits & ~UMASK;
  }

  /** Makes sure every folder of `rel` exists as a real folder (no links followed), creating what is missing. */
  ensureParents(parts: readonly string[], upto = parts.length - 1): string {
    let at = this.root;
    for (let i = 0; i < upto; i++) {
      at = path.join(at, parts[i]!);
      if (this.dirsOk.has(at)) continue;
      const st = fs.lstatSync(at, { throwIfNoEntry: false });
      if (!st) fs.mkdirSync(at);
      else if (!st.isDirectory()) {
        const what = st.isSymbolicLink() ? "a symbolic link" : "a file";
        if (!this.opts.force)
          throw new Error(`${at} is ${what}, not a folder (not followed; use --force to replace it)`);
        this.refuseArchive(st, at);
        fs.unlinkSync(at);
        fs.mkdirSync(at);
      }
      this.dirsOk.add(at);
    }
    return at;
  }

  private refuseArchive(st: fs.Stats, p: string): void {
    if (this.opts.archiveId !== undefined && `${st.dev}:${st.ino}` === this.opts.archiveId)
      throw new Error(`${p} is the archive being read: not overwritten`);
  }

  /** What is at `p` now: nothing (fine), or something replaceable with --force. */
  private checkExisting(p: string, asDir: boolean): fs.Stats | undefined {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return undefined;
    this.refuseArchive(st, p);
    if (asDir && st.isDirectory()) return st;
    if (st.isDirectory()) throw new Error(`${p} exists and is a folder`);
    if (!this.opts.force) throw new Error(`${p} exists (use --force to overwrite)`);
    return st;
  }

  private tempName(p: string): string {
    return path.join(path.dirname(p), `.${path.basename(p)}.des-tmp-${process.pid}-${++this.seq}`);
  }

  /** Writes verified bytes: straight to a new name (O_EXCL, no links followed), or to a temp name renamed over an old file. */
  writeFile(parts: readonly string[], body: Uint8Array, st: FileStat): string {
    this.ensureParents(parts);
    const p = path.join(this.root, ...parts);
    let into = p;
    let fd: number | undefined;
    try {
      // Most targets are new: try to create the name first (one system call), look at what is there only when it exists.
      fd = fs.openSync(p, CREATE, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" && (e as NodeJS.ErrnoException).code !== "ELOOP") throw e;
      this.checkExisting(p, false);
      into = this.tempName(p);
    }
    this.inFlight.add(into);
    try {
      fd ??= fs.openSync(into, CREATE, 0o600);
      let at = 0;
      while (at < body.length) at += fs.writeSync(fd, body, at, body.length - at);
      this.finishFd(fd, st, 0o644);
      fs.closeSync(fd);
      fd = undefined;
      if (into !== p) fs.renameSync(into, p);
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(into, { force: true });
      throw e;
    } finally {
      this.inFlight.delete(into);
    }
    return p;
  }

  private finishFd(fd: number, st: FileStat, fallback: number): void {
    fs.fchmodSync(fd, this.modeOf(st, fallback));
    if (this.opts.sameOwner && ROOT && st.uid !== undefined && st.gid !== undefined) fs.fchownSync(fd, st.uid, st.gid);
    if (st.mtimeMs !== undefined) fs.futimesSync(fd, st.mtimeMs / 1000, st.mtimeMs / 1000);
  }

  /** Streams a big entry into a temp file; renamed into place only once its checksum passed (the stream fails otherwise). */
  async streamFile(
    parts: readonly string[],
    reader: DesReader,
    name: string,
    st: FileStat,
    signal: AbortSignal,
  ): Promise<string> {
    this.ensureParents(parts);
    const p = path.join(this.root, ...parts);
    this.checkExisting(p, false);
    const tmp = this.tempName(p);
    this.inFlight.add(tmp);
    try {
      const fd = fs.openSync(tmp, CREATE, 0o600);
      await pipeline(reader.stream(name, { signal }), fs.createWriteStream("", { fd, autoClose: true }), { signal });
      const fd2 = fs.openSync(tmp, fs.constants.O_RDONLY | O_NOFOLLOW);
      try {
        this.finishFd(fd2, st, 0o644);
      } finally {
        fs.closeSync(fd2);
      }
      fs.renameSync(tmp, p);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      this.removed++;
      throw e;
    } finally {
      this.inFlight.delete(tmp);
    }
    return p;
  }

  /** Creates a folder entry; its mode and time are applied at the end (after its contents). */
  makeDir(parts: readonly string[], st: FileStat): string {
    const p = this.ensureParents(parts, parts.length);
    if (st.mode !== undefined || st.mtimeMs !== undefined) this.dirMeta.push({ p, st });
    return p;
  }

  /** Creates a symbolic link (after every file): only pointing inside the target unless allowed. */
  makeSymlink(parts: readonly string[], target: string, st: FileStat): string {
    this.ensureParents(parts);
    const p = path.join(this.root, ...parts);
    if (!this.opts.allowUnsafeLinks) {
      if (dotDotAfterName(target))
        throw new Error(
          `${p}: not creating a link to ${JSON.stringify(target)}, a ".." after a name can lead outside ${this.root} (use --allow-unsafe-links)`,
        );
      if (!linkStaysInside(this.root, p, target))
        throw new Error(
          `${p}: not creating a link to ${JSON.stringify(target)}, it leads outside ${this.root} (use --allow-unsafe-links)`,
        );
    }
    const existing = this.checkExisting(p, false);
    const into = existing ? this.tempName(p) : p;
    fs.symlinkSync(target, into);
    if (existing) fs.renameSync(into, p);
    if (st.mtimeMs !== undefined) {
      try {
        fs.lutimesSync(p, st.mtimeMs / 1000, st.mtimeMs / 1000);
      } catch {
        // some systems cannot set a link's own time
      }
    }
    return p;
  }

  /**
   * Checks a link made by `makeSymlink` again once every link exists (one
   * made later may change where it leads): a link that now leads outside the
   * target is removed, and the reason returned.
   */
  recheckSymlink(p: string): Error | undefined {
    if (this.opts.allowUnsafeLinks) return undefined;
    const target = fs.readlinkSync(p);
    let ok = linkStaysInside(this.root, p, target);
    if (ok) {
      try {
        ok = inside(this.root, fs.realpathSync.native(p));
      } catch {
        // leads nowhere (yet): the step-by-step check above is what holds
      }
    }
    if (ok) return undefined;
    fs.unlinkSync(p);
    return new Error(
      `${p}: removed the link to ${JSON.stringify(target)}, it leads outside ${this.root} (use --allow-unsafe-links)`,
    );
  }

  /** Makes `parts` a second name of the file already extracted at `to`. */
  makeHardLink(parts: readonly string[], to: string): string {
    this.ensureParents(parts);
    const p = path.join(this.root, ...parts);
    const existing = this.checkExisting(p, false);
    const into = existing ? this.tempName(p) : p;
    fs.linkSync(to, into);
    if (existing) fs.renameSync(into, p);
    return p;
  }

  /** Folder modes and times, deepest first, once nothing more is written into them. */
  finishDirs(): void {
    this.dirMeta.sort((a, b) => b.p.length - a.p.length);
    for (const { p, st } of this.dirMeta) {
      if (st.mode !== undefined) fs.chmodSync(p, this.modeOf(st, 0o755));
      if (st.mtimeMs !== undefined) fs.utimesSync(p, st.mtimeMs / 1000, st.mtimeMs / 1000);
    }
  }

  /** Removes whatever is half-written (on interrupt). */
  cleanup(): number {
    for (const p of this.inFlight) {
      fs.rmSync(p, { force: true });
      this.removed++;
    }
    this.inFlight.clear();
    return this.removed;
  }
}
