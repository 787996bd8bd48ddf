import { throwIfAborted } from "../errors.js";
import { checkRange, MEMORY_HINTS, type RangeSource, type ReadHints } from "../io/source.js";

/** An archive held in memory. Reads return views, not copies. */
export class MemorySource implements RangeSource {
  readonly key: string;
  readonly size: number;
  readonly hints: ReadHints = MEMORY_HINTS;
  private readonly bytes: Uint8Array;
  /** Counts reads, so tests and benchmarks can assert I/O. */
  readonly stats = { reads: 0, bytesRead: 0 };

  constructor(bytes: Uint8Array, key = "memory:") {
    // A plain Uint8Array view, so callers get Uint8Array (not Buffer) slices whatever they passed in.
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.length;
    this.key = key;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.size, this.key);
    this.stats.reads++;
    this.stats.bytesRead += length;
    return this.bytes.subarray(offset, offset + length);
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number }> {
    const n = Math.min(length, this.size);
    return { bytes: await this.read(this.size - n, n, signal), size: this.size };
  }
}
