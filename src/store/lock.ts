import fs from "node:fs";
import os from "node:os";
import { DesIoError, DesLockedError } from "../errors.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An exclusive lock file holding `pid` and host name, created with O_EXCL. A
 * lock left by a dead process on this host is taken over; a live holder (or
 * one on another host) gives DesLockedError.
 */
export class LockFile {
  private constructor(readonly file: string) {}

  static acquire(file: string, what: string): LockFile {
    const host = os.hostname();
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(file, "wx", 0o644);
        fs.writeSync(fd, `${process.pid}\n${host}\n`);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        return new LockFile(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST")
          throw new DesIoError(`cannot create lock ${file}: ${(e as Error).message}`, { cause: e });
      }
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch {
        continue; // removed meanwhile: try again
      }
      const [pidText, holderHost] = text.split("\n");
      const pid = Number(pidText);
      const valid = Number.isInteger(pid) && pid > 0;
      if (valid && holderHost === host && pid !== process.pid && !alive(pid)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const holder = valid ? `process ${pid} on ${holderHost ?? "?"}` : "an unknown process";
      throw new DesLockedError(
        `${what} is locked by ${holder} (lock file ${file}); two stores with the same node id cannot share a location`,
        file,
        valid ? { pid, ...(holderHost ? { host: holderHost } : {}) } : undefined,
      );
    }
    throw new DesLockedError(`${what}: could not take the lock file ${file}`, file);
  }

  release(): void {
    fs.rmSync(this.file, { force: true });
  }
}
