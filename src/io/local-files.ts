import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DesIoError, DesLockedError } from "../errors.js";

/** Makes a directory's entries durable, e.g. after a rename (where the platform allows fsync on directories). */
export async function syncDir(dir: string): Promise<void> {
  let fd: fs.promises.FileHandle | undefined;
  try {
    fd = await fs.promises.open(dir, "r");
    await fd.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the files themselves are already synced.
  } finally {
    await fd?.close();
  }
}

/** What a lock file says about the process that holds it. */
export interface LockHolder {
  readonly pid?: number;
  readonly host?: string;
  readonly since?: string;
}

export interface LockFile {
  readonly path: string;
  /** Removes the lock file; safe to call twice. */
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    return parsed && typeof parsed === "object" ? (parsed as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A lock file that does not say who holds it (empty or unparsable) and is at
 * least this old was left by a crash between its creation and its write (or
 * by a power loss before its bytes reached the disk): a live holder writes
 * its bytes microseconds after creating the file.
 */
export const UNWRITTEN_LOCK_MS = 5000;

/**
 * When this process started (wall clock, ms): the same in every thread of
 * it (a worker's `performance.timeOrigin` is its own start, later than the
 * locks its process's other threads hold).
 */
const PROCESS_START = Date.now() - process.uptime() * 1000;

/** Lock files this thread holds (resolved paths): never stale to it, whatever the clock did. */
const held = new Set<string>();

/** A lock file as found: its holder and the identity of the file, to check again before removing it. */
interface Seen {
  readonly holder: LockHolder | undefined;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

function look(file: string): Seen | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined; // released meanwhile
  }
  return { holder: readHolder(file), ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

function sameLock(a: Seen, b: Seen): boolean {
  return (
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.holder?.pid === b.holder?.pid &&
    a.holder?.since === b.holder?.since
  );
}

/**
 * True when the lock's holder is certainly gone: a lock that names no holder
 * and is older than UNWRITTEN_LOCK_MS; a process of this host that no longer
 * exists; or this process's pid with a start earlier than this process's
 * (a process before a restart that reused the pid, as pid 1 in a container).
 */
function isStale(file: string, seen: Seen): boolean {
  const h = seen.holder;
  if (!h || typeof h.pid !== "number") return Date.now() - seen.mtimeMs >= UNWRITTEN_LOCK_MS;
  if (h.host !== os.hostname()) return false;
  if (h.pid !== process.pid) return !alive(h.pid);
  if (held.has(file)) return false;
  const since = typeof h.since === "string" ? Date.parse(h.since) : NaN;
  return since < PROCESS_START;
}

/** Describes a holder for an error message: "process 123 on host since ...". */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder || typeof holder.pid !== "number") return "an unknown process";
  return `process ${holder.pid} on ${holder.host ?? "?"}${holder.since ? ` since ${holder.since}` : ""}`;
}

/**
 * Takes an exclusive lock file (created with O_EXCL, holding this process's
 * pid, host name and start time as JSON), failing at once with
 * DesLockedError(`message(holder)`) when another process holds it. A stale
 * lock (see isStale: a dead process of this host, an earlier process with
 * this pid, or a lock naming no holder older than UNWRITTEN_LOCK_MS) is taken
 * over; a lock from another host is never broken. Not fsynced: after a power
 * loss a missing or empty lock file is no lock.
 */
export function takeLockFile(file: string, message: (holder: LockHolder | undefined) => string): LockFile {
  const key = path.resolve(file);
  const body = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DesIoError(`cannot create the lock file ${file}: ${(e as Error).message}`, { cause: e });
      }
      const seen = look(file);
      if (seen === undefined && attempt < 2) continue; // released meanwhile: try again
      if (seen !== undefined && attempt === 0 && isStale(key, seen)) {
        breakStale(file, seen);
        continue;
      }
      throw new DesLockedError(message(seen?.holder), file, seen?.holder);
    }
    try {
      fs.writeSync(fd, body);
    } catch (e) {
      // Left empty, the file would read as an unknown holder's lock for UNWRITTEN_LOCK_MS.
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw new DesIoError(`cannot write the lock file ${file}: ${(e as Error).message}`, { cause: e });
    }
    fs.closeSync(fd);
    held.add(key);
    let released = false;
    return {
      path: file,
      release() {
        if (released) return;
        released = true;
        held.delete(key);
        fs.rmSync(file, { force: true });
      },
    };
  }
}

/**
 * Removes the stale lock `seen`, if it is still the file there, under
 * `<lock>.break` (created with O_EXCL): one taker at a time looks again and
 * removes. Without it, two takers that both judged the same lock stale could
 * race: the second's remove could delete the lock the first had just made.
 * A taker that finds the break file leaves the lock alone (its next look
 * sees what the other taker left); a break file older than UNWRITTEN_LOCK_MS
 * was left by a crash in between and is removed.
 */
function breakStale(file: string, seen: Seen, cleared = false): void {
  const brk = `${file}.break`;
  let fd: number;
  try {
    fd = fs.openSync(brk, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST")
      throw new DesIoError(`cannot create ${brk}: ${(e as Error).message}`, { cause: e });
    const st = fs.statSync(brk, { throwIfNoEntry: false });
    if (cleared || !st || Date.now() - st.mtimeMs < UNWRITTEN_LOCK_MS) return;
    fs.rmSync(brk, { force: true });
    return breakStale(file, seen, true);
  }
  try {
    // Look again just before removing, so a lock re-taken meanwhile by a live process is left alone.
    const again = look(file);
    if (again !== undefined && sameLock(seen, again)) removeLock(file);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(brk, { force: true });
  }
}

function removeLock(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (e) {
    throw new DesIoError(`cannot remove the stale lock file ${file}: ${(e as Error).message}`, { cause: e });
  }
}
