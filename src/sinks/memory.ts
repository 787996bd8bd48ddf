import { DesIoError } from "../errors.js";
import type { ByteSink } from "../io/sink.js";

/** Collects everything in memory; `bytes()` after commit. For tests and small archives. */
export class MemorySink implements ByteSink {
  readonly location: string;
  private chunks: Uint8Array[] = [];
  private committed: Uint8Array | undefined;
  private written = 0;

  constructor(location = "memory:") {
    this.location = location;
  }

  async write(chunk: Uint8Array): Promise<void> {
    // A copy: writers may reuse the chunk's memory once write() resolves (Buffer#slice would not copy).
    this.chunks.push(new Uint8Array(chunk));
    this.written += chunk.length;
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.written;
  }

  async commit(): Promise<void> {
    this.committed = Buffer.concat(this.chunks);
    this.chunks = [];
  }

  async abort(): Promise<void> {
    this.chunks = [];
  }

  bytes(): Uint8Array {
    if (!this.committed) throw new DesIoError("MemorySink: not committed");
    return this.committed;
  }
}
