/**
 * Reading a prefix of an archive as a whole archive (spec 3.8): an older
 * generation, or the committed generation under a torn tail.
 */
import { DesChecksumError, DesFormatError } from "../errors.js";
import { HEADER_SIZE } from "../format/constants.js";
import { MIN_V2_ARCHIVE, decodePendingLength } from "../format/v2/pending.js";
import { checkRange, readInto } from "../io/source.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import type { Fetcher } from "./fetcher.js";

/**
 * The first `size` bytes of a source, as an archive of that size: an older
 * generation, or the committed generation under a torn tail. Those bytes
 * never change once committed (spec 3.8), so the prefix is readable from any
 * later version of the source: `readTail` learns the source's current
 * version (one small extra request) and pins the prefix's reads to it.
 */
export class PrefixSource implements RangeSource {
  readonly key: string;
  readonly hints: ReadHints;
  readonly readMany?: NonNullable<RangeSource["readMany"]>;

  /**
   * `pin`: pin the prefix's reads to the source's version learnt at each
   * `readTail` (an older generation: a replaced object then reads as a
   * change). Unpinned (a torn tail): an append still running changes a
   * local file's version with every write, while the committed prefix
   * stays the same bytes.
   */
  constructor(
    readonly inner: RangeSource,
    readonly size: number,
    private readonly pin = true,
  ) {
    this.key = `${inner.key}#length=${size}`;
    this.hints = inner.hints;
    const many = inner.readMany?.bind(inner);
    if (many) {
      this.readMany = (ranges, signal, version) => {
        for (const r of ranges) checkRange(r.offset, r.length, this.size, this.key);
        return many(ranges, signal, version);
      };
    }
  }

  read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    checkRange(offset, length, this.size, this.key);
    return this.inner.read(offset, length, signal, version);
  }

  async readInto(offset: number, target: Uint8Array, signal?: AbortSignal, version?: string): Promise<void> {
    checkRange(offset, target.length, this.size, this.key);
    return readInto(this.inner, offset, target, signal, version);
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    const whole = await this.inner.readTail(1, signal);
    if (whole.size < this.size)
      throw new DesFormatError(
        `${this.inner.key} has ${whole.size} bytes, fewer than the ${this.size} of the generation being read`,
      );
    const n = Math.min(length, this.size);
    const version = this.pin ? whole.version : undefined;
    const bytes = await this.inner.read(this.size - n, n, signal, version);
    return version === undefined ? { bytes, size: this.size } : { bytes, size: this.size, version };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function isTornTailError(e: unknown): boolean {
  return e instanceof DesFormatError || (e instanceof DesChecksumError && e.subject.kind === "footer");
}

/**
 * Called by `Opening.load` when the tail it read does not open (spec 3.8.3):
 * the committed prefix named by the header's `pending_length` (an append in
 * progress, or one that crashed), or undefined when there is none (then the
 * tail is simply corrupt and the original error stands). One 16-byte read.
 */
export async function committedPrefix(
  error: unknown,
  fetcher: Fetcher,
  size: number,
  signal?: AbortSignal,
): Promise<PrefixSource | undefined> {
  const source = fetcher.source;
  if (source instanceof PrefixSource || !isTornTailError(error) || size < MIN_V2_ARCHIVE) return undefined;
  const pending = decodePendingLength(await fetcher.read(0, HEADER_SIZE, signal));
  if (pending === undefined || pending < MIN_V2_ARCHIVE || pending >= size) return undefined;
  return new PrefixSource(source, pending, false);
}
