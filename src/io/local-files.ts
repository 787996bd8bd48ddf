import fs from "node:fs";
import os from "node:os";
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

/** Describes a holder for an error message: "process 123 on host since ...". */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder || typeof holder.pid !== "number") return "an unknown process";
  return `process ${holder.pid} on ${holder.host ?? "?"}${holder.since ? ` since ${holder.since}` : ""}`;
}

/**
 * Takes an exclusive lock file (created with O_EXCL, holding this process's
 * pid, host name and start time as JSON), failing at once with
 * DesLockedError(`message(holder)`) when another process holds it. A lock
 * left by a dead process of this host is taken over; a lock from another
 * host is never broken. Not fsynced: after a power loss a missing or empty
 * lock file is simply no lock.
 */
export function takeLockFile(file: string, message: (holder: LockHolder | undefined) => string): LockFile {
  const body = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DesIoError(`cannot create the lock file ${file}: ${(e as Error).message}`, { cause: e });
      }
      const holder = readHolder(file);
      const stale =
        holder !== undefined &&
        holder.host === os.hostname() &&
        typeof holder.pid === "number" &&
        holder.pid !== process.pid &&
        !alive(holder.pid);
      if (stale && attempt === 0) {
        // Re-read just before removing, so a lock re-taken meanwhile by a live process is left alone.
        const again = readHolder(file);
        if (again?.pid === holder.pid && again.since === holder.since) fs.rmSync(file, { force: true });
        continue;
      }
      throw new DesLockedError(message(holder), file, holder);
    }
    try {
      fs.writeSync(fd, body);
    } finally {
      fs.closeSync(fd);
    }
    let released = false;
    return {
      path: file,
      release() {
        if (released) return;
        released = true;
        fs.rmSync(file, { force: true });
      },
    };
  }
}
