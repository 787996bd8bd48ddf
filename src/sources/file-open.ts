import fs from "node:fs";
import { DesInvalidArgumentError, DesIoError } from "../errors.js";

/** Opening a local archive: a descriptor and its stat, refused unless a regular file. */

// O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing for regular files.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/**
 * The version token of a local file: device, inode, size and modification
 * time in nanoseconds (spec "Local files: version tokens"). A file replaced
 * by a rename changes inode; one rewritten in place changes size or mtime.
 */
export function fileVersion(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

function notRegular(filePath: string): DesInvalidArgumentError {
  return new DesInvalidArgumentError(
    `${filePath} is not a regular file (a FIFO, device, socket or directory cannot be read as an archive)`,
  );
}

export function openFd(filePath: string): Promise<{ fd: number; st: fs.BigIntStats }> {
  return new Promise((resolve, reject) =>
    fs.open(filePath, OPEN_FLAGS, (e, fd) => {
      if (e) return reject(new DesIoError(`cannot open ${filePath}: ${e.message}`, { cause: e }));
      fs.fstat(fd, { bigint: true }, (e2, st) => {
        if (e2 || !st.isFile()) {
          fs.close(fd, () => undefined);
          if (e2) return reject(new DesIoError(`cannot stat ${filePath}: ${e2.message}`, { cause: e2 }));
          return reject(notRegular(filePath));
        }
        resolve({ fd, st });
      });
    }),
  );
}

/** `openFd` on the calling thread (syncReads mode: the caller chose blocking system calls). */
export function openFdSync(filePath: string): { fd: number; st: fs.BigIntStats } {
  let fd: number;
  try {
    fd = fs.openSync(filePath, OPEN_FLAGS);
  } catch (e) {
    throw new DesIoError(`cannot open ${filePath}: ${(e as Error).message}`, { cause: e });
  }
  let st: fs.BigIntStats;
  try {
    st = fs.fstatSync(fd, { bigint: true });
  } catch (e) {
    fs.closeSync(fd);
    throw new DesIoError(`cannot stat ${filePath}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw notRegular(filePath);
  }
  return { fd, st };
}
