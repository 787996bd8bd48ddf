import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { ioError } from "./output.js";

/** Opens the spill file: a fresh temporary file, readable and writable. */
export type SpillOpener = (dir: string) => { path: string; fd: number };

const openTemp: SpillOpener = (dir) => {
  const p = path.join(dir, `des-pack-meta-${process.pid}-${crypto.randomBytes(6).toString("hex")}.tmp`);
  return { path: p, fd: fs.openSync(p, "wx+", 0o600) };
};

/** writeSync of every byte, however many calls it takes (a short write is not an error, a zero-byte one is). */
function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let off = 0;
  while (off < bytes.length) {
    const n = fs.writeSync(fd, bytes, off, bytes.length - off, position + off);
    if (n <= 0) throw new Error(`wrote ${off} of ${bytes.length} bytes`);
    off += n;
  }
}

/**
 * An append-only byte buffer that lives in memory until it passes a limit,
 * then moves to a temporary file. The writer keeps META here while DATA
 * streams out, so memory stays bounded however much meta there is. Bytes
 * count only once wholly written; any failure (a full disk) is a DesIoError.
 */
export class SpillBuffer {
  private chunks: Uint8Array[] = [];
  private inMemory = 0;
  private file: { path: string; fd: number } | undefined;
  length = 0;

  constructor(
    private readonly limit = 8 << 20,
    private readonly dir = os.tmpdir(),
    private readonly open: SpillOpener = openTemp,
  ) {}

  append(bytes: Uint8Array): void {
    if (!this.file && this.inMemory + bytes.length <= this.limit) {
      this.chunks.push(bytes);
      this.inMemory += bytes.length;
      this.length += bytes.length;
      return;
    }
    try {
      if (!this.file) this.spill();
      writeAll(this.file!.fd, bytes, this.length);
    } catch (e) {
      throw ioError("writing meta to its temporary file failed", e);
    }
    this.length += bytes.length;
  }

  /** Moves the bytes held in memory to a new temporary file (they stay in memory if that fails). */
  private spill(): void {
    this.file = this.open(this.dir);
    let at = 0;
    for (const c of this.chunks) {
      writeAll(this.file.fd, c, at);
      at += c.length;
    }
    this.chunks = [];
    this.inMemory = 0;
  }

  /** Replays the contents in order, in chunks of at most 1 MiB; a file shorter than what was written is a DesIoError. */
  async *read(): AsyncGenerator<Uint8Array> {
    if (!this.file) {
      yield* this.chunks;
      return;
    }
    let pos = 0;
    while (pos < this.length) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, this.length - pos));
      let n: number;
      try {
        n = fs.readSync(this.file.fd, buf, 0, buf.length, pos);
      } catch (e) {
        throw ioError("reading meta back from its temporary file failed", e);
      }
      if (n === 0)
        throw ioError(
          "reading meta back from its temporary file failed",
          new Error(`the file ends at ${pos} of ${this.length} bytes`),
        );
      pos += n;
      yield buf.subarray(0, n);
    }
  }

  dispose(): void {
    if (this.file) {
      try {
        fs.closeSync(this.file.fd);
      } catch {
        // already closed
      }
      fs.rmSync(this.file.path, { force: true });
      this.file = undefined;
    }
    this.chunks = [];
  }
}
