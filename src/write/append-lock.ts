/**
 * The local append lock and crash recovery (spec 3.8.3, 3.8.4): one
 * appender at a time per archive file; a crashed append is rolled back (or
 * forward, when it had committed) by the next appender.
 */
import fs from "node:fs";
import path from "node:path";
import { DesChecksumError, DesError, DesFormatError, DesIoError } from "../errors.js";
import { describeHolder, takeLockFile } from "../io/local-files.js";
import { HEADER_SIZE, V2_FOOTER_SIZE } from "../format/constants.js";
import { decodeV2Footer } from "../format/v2/footer.js";
import type { V2Footer } from "../format/v2/footer.js";
import { PENDING_OFFSET, decodePendingLength, encodePendingLength } from "../format/v2/pending.js";

export interface AppendLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * The lock file of an archive: beside the file itself, symbolic links
 * resolved, so every path that names the file through links takes the same
 * lock (spec 3.8.4). An archive that does not exist keeps its own path (the
 * append then fails to open it).
 */
export function lockPathOf(archive: string): string {
  let real: string;
  try {
    real = fs.realpathSync.native(archive);
  } catch {
    real = path.resolve(archive);
  }
  return `${real}.des-lock`;
}

/**
 * Takes the lock, failing at once with DesLockedError when another appender
 * holds it. A lock left by a dead process of this host is taken over.
 */
export async function acquireLock(archive: string): Promise<AppendLock> {
  const at = lockPathOf(archive);
  const lock = takeLockFile(
    at,
    (holder) =>
      `${path.resolve(archive)} is being appended to by ${describeHolder(holder)} (lock ${at}); if that process is gone, remove the lock file`,
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

/** The footer that ends at `end`, when the 128 bytes before it are a valid one for an archive of `end` bytes. */
function footerEndingAt(fd: number, end: number): V2Footer | undefined {
  if (end < HEADER_SIZE + V2_FOOTER_SIZE) return undefined;
  const bytes = Buffer.alloc(V2_FOOTER_SIZE);
  if (fs.readSync(fd, bytes, 0, V2_FOOTER_SIZE, end - V2_FOOTER_SIZE) !== V2_FOOTER_SIZE) return undefined;
  try {
    return decodeV2Footer(bytes, end);
  } catch (e) {
    // A footer this reader cannot read (a feature of a newer writer) may well be committed: never "no footer".
    if (e instanceof DesChecksumError || e instanceof DesFormatError) return undefined;
    throw e;
  }
}

/**
 * Finishes what a crashed append left (call with the lock held, spec
 * 3.8.3). With a pending length P in the header:
 * - the file ends in a valid footer: that generation is what every reader
 *   opens, so it stands (committed when it follows the footer at P - 128, as
 *   an append that crashed after its commit leaves it); clear P;
 * - else the first P bytes end in a valid footer of an archive of P bytes
 *   (an append that crashed before its commit): truncate to P, clear P;
 * - else P names no generation (the header was damaged, or written by
 *   something else): nothing is changed, DesFormatError. Seven bytes of the
 *   header never decide alone that a file is cut.
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
  if (footerEndingAt(fd, size)) {
    writePending(fd, 0);
    return "committed";
  }
  if (!footerEndingAt(fd, pending))
    throw new DesFormatError(
      `the archive does not end in a footer, and its header's pending length ${pending} names no committed generation: it is damaged, and nothing was changed`,
    );
  fs.ftruncateSync(fd, pending);
  fs.fsyncSync(fd);
  writePending(fd, 0);
  return "rolled-back";
}

/**
 * Recovers an archive after a crashed append (spec 3.8.3), taking the lock
 * for the duration: DesLockedError when an append is running.
 */
export async function recoverArchive(archive: string): Promise<RecoveryOutcome> {
  const lock = await acquireLock(archive);
  try {
    const fd = io(`cannot open ${archive}`, () => fs.openSync(archive, "r+"));
    try {
      return io(`cannot recover ${archive}`, () => recoverOpenFile(fd));
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    await lock.release();
  }
}

/** Runs `fn`; a file-system failure becomes DesIoError (what it was doing, then why). */
export function io<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DesError) throw e;
    throw new DesIoError(`${what}: ${(e as Error).message}`, { cause: e });
  }
}
