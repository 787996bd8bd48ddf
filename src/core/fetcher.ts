import { coalesceRanges, runConcurrent } from "./coalesce.js";
import type { RangeGroup, RangeWant } from "./coalesce.js";
import type { RangeSource, ReadHints } from "./source.js";

/** What a reader has asked of its source, for tests, benchmarks and capacity planning. */
export interface IoStats {
  /** Reads issued to the source (identical concurrent reads count once). */
  requests: number;
  /** Bytes those reads returned. */
  bytes: number;
}

/**
 * The reader's only path to its source: identical in-flight ranges share one
 * read, every read is counted, batches are coalesced by the hints.
 */
export class Fetcher {
  readonly source: RangeSource;
  readonly hints: ReadHints;
  readonly stats: IoStats = { requests: 0, bytes: 0 };
  private readonly inflight = new Map<string, Promise<Uint8Array>>();
  /** The bytes read at open; any read inside them costs no request. */
  private tail: { bytes: Uint8Array; start: number } | undefined;
  /** The version (ETag) the tail was read from; every later read is pinned to it. */
  private version: string | undefined;

  constructor(source: RangeSource, hints: ReadHints) {
    this.source = source;
    this.hints = hints;
  }

  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const t = this.tail;
    if (t && offset >= t.start && offset + length <= t.start + t.bytes.length) {
      return Promise.resolve(t.bytes.subarray(offset - t.start, offset - t.start + length));
    }
    const key = `${offset}:${length}`;
    const shared = this.inflight.get(key);
    if (shared) return shared;
    this.stats.requests++;
    const p = this.source.read(offset, length, signal, this.version).then(
      (bytes) => {
        this.inflight.delete(key);
        this.stats.bytes += bytes.length;
        return bytes;
      },
      (e: unknown) => {
        this.inflight.delete(key);
        throw e;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number }> {
    this.stats.requests++;
    const tail = await this.source.readTail(length, signal);
    this.stats.bytes += tail.bytes.length;
    this.tail = { bytes: tail.bytes, start: tail.size - tail.bytes.length };
    this.version = tail.version;
    return tail;
  }

  /** Coalesces wants into groups and reads them concurrently, yielding each group as it arrives. */
  async *readGroups<T>(
    wants: readonly RangeWant<T>[],
    signal?: AbortSignal,
    hints: Partial<ReadHints> = {},
  ): AsyncGenerator<{ group: RangeGroup<T>; bytes: Uint8Array }> {
    const h = { ...this.hints, ...hints };
    const groups = coalesceRanges(wants, h.maxGap, h.maxSpan);
    yield* runConcurrent(
      groups,
      h.concurrency,
      async (group, inner) => ({ group, bytes: await this.read(group.offset, group.length, inner) }),
      signal,
    );
  }
}
