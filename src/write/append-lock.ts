/**
 * The local append lock and crash recovery (spec 3.8.3, 3.8.4): one
 * appender at a time per archive file; a crashed append is rolled back (or
 * forward, when it had committed) by the next appender.
 */
import fs from "node:fs";
import path from "node:path";
import { DesIoError } from "../errors.js";
import { describeHolder, takeLockFile } from "../io/local-files.js";
import { HEADER_SIZE, V2_FOOTER_SIZE } from "../format/constants.js";
import { decodeV2Footer } from "../format/v2/footer.js";
import { PENDING_OFFSET, decodePendingLength, encodePendingLength } from "../format/v2/pending.js";

export interface AppendLock {
  readonly path: string;
  release(): Promise<void>;
}

export function lockPathOf(archive: string): string {
  return `${path.resolve(archive)}.des-lock`;
}

/**
 * Takes the lock, failing at once with DesLockedError when another appender
 * holds it. A lock left by a dead process of this host is taken over.
 */
export async function acquireLock(archive: string): Promise<AppendLock> {
  const lock = takeLockFile(
    lockPathOf(archive),
    (holder) =>
      `${path.resolve(archive)} is being appended to by ${describeHolder(holder)} (lock ${lockPathOf(archive)}); if that process is gone, remove the lock file`,
  );
  return {
    path: lock.path,
    async release() {
      lock.release();
    },
  };
}

/** What recovery found and did. */
export type RecoveryOutcome = "clean" | "committed" | "rolled-back";

/**
 * Writes `pending_length`. Setting it must be durable before any byte goes
 * past the committed length (`sync`); clearing it after the commit need not
 * be: a pending length left behind by a power loss only makes the next
 * appender check the footer and clear it.
 */
export function writePending(fd: number, length: number, sync = true): void {
  const bytes = encodePendingLength(length);
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, PENDING_OFFSET + done);
  if (sync) fs.fdatasyncSync(fd);
}

/**
 * Finishes what a crashed append left (call with the lock held): if the
 * header has a pending length P, either the append committed (the file ends
 * in a valid footer whose previous footer is at P - 128): clear P; or it did
 * not: truncate to P, then clear P. Both end in a clean archive.
 */
export function recoverOpenFile(fd: number): RecoveryOutcome {
  const header = Buffer.alloc(HEADER_SIZE);
  const got = fs.readSync(fd, header, 0, HEADER_SIZE, 0);
  const pending = got === HEADER_SIZE ? decodePendingLength(header) : undefined;
  if (!pending) return "clean";
  const size = fs.fstatSync(fd).size;
  if (size < pending)
    throw new DesIoError(
      `the archive is ${size} bytes, shorter than its committed length ${pending}: it was truncated by something else`,
    );
  let committed = size === pending;
  if (!committed && size >= pending + V2_FOOTER_SIZE) {
    const tail = Buffer.alloc(V2_FOOTER_SIZE);
    fs.readSync(fd, tail, 0, V2_FOOTER_SIZE, size - V2_FOOTER_SIZE);
    try {
      committed = decodeV2Footer(tail, size).prevFooterOffset === pending - V2_FOOTER_SIZE;
    } catch {
      committed = false;
    }
  }
  if (!committed) {
    fs.ftruncateSync(fd, pending);
    fs.fsyncSync(fd);
  }
  writePending(fd, 0);
  return committed ? "committed" : "rolled-back";
}

/**
 * Recovers an archive after a crashed append (spec 3.8.3), taking the lock
 * for the duration: DesLockedError when an append is running.
 */
export async function recoverArchive(archive: string): Promise<RecoveryOutcome> {
  const lock = await acquireLock(archive);
  try {
    const fd = fs.openSync(archive, "r+");
    try {
      return recoverOpenFile(fd);
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    await lock.release();
  }
}
