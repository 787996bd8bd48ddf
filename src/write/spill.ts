import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";

/**
 * An append-only byte buffer that lives in memory until it passes a limit,
 * then moves to a temporary file. The writer keeps META here while DATA
 * streams out, so memory stays bounded however much meta there is.
 */
export class SpillBuffer {
  private chunks: Uint8Array[] = [];
  private inMemory = 0;
  private file: { path: string; fd: number } | undefined;
  length = 0;

  constructor(
    private readonly limit = 8 << 20,
    private readonly dir = os.tmpdir(),
  ) {}

  append(bytes: Uint8Array): void {
    this.length += bytes.length;
    if (this.file) {
      fs.writeSync(this.file.fd, bytes);
      return;
    }
    this.chunks.push(bytes);
    this.inMemory += bytes.length;
    if (this.inMemory > this.limit) this.spill();
  }

  private spill(): void {
    const p = path.join(this.dir, `des-pack-meta-${process.pid}-${crypto.randomBytes(6).toString("hex")}.tmp`);
    const fd = fs.openSync(p, "wx+", 0o600);
    this.file = { path: p, fd };
    for (const c of this.chunks) fs.writeSync(fd, c);
    this.chunks = [];
    this.inMemory = 0;
  }

  /** Replays the contents in order, in chunks of at most 1 MiB. */
  async *read(): AsyncGenerator<Uint8Array> {
    if (!this.file) {
      yield* this.chunks;
      return;
    }
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    while (pos < this.length) {
      const n = fs.readSync(this.file.fd, buf, 0, Math.min(buf.length, this.length - pos), pos);
      if (n === 0) break;
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
