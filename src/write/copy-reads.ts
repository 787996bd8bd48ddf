import { coalesceRanges } from "../read/coalesce.js";
import type { RangeWant } from "../read/coalesce.js";
import type { Fetcher } from "../read/fetcher.js";
import type { HashArena } from "../format/hash-arena.js";

/**
 * Reads for a copy (repack, merge): each batch of ranges is coalesced and
 * read into one of two buffers that are reused, batch after batch, instead
 * of a fresh buffer per read. The views a batch hands out stay valid until
 * the batch after next is read (one batch is read while the previous one is
 * written out). With an arena, the two buffers are its two halves, so the
 * bytes handed out can be hashed where they lie (`arena.xxh64`); a batch
 * larger than a half is read into a buffer of its own, as without one.
 */
export class ReusedBatchReads {
  private readonly buffers: (Buffer | undefined)[] = [undefined, undefined];
  private turn = 0;

  constructor(
    private readonly fetcher: Fetcher,
    private readonly maxGap: number,
    private readonly maxSpan: number,
    private readonly arena?: HashArena,
  ) {}

  /** Room for a batch of `total` bytes, in buffer `k`. */
  private room(k: number, total: number): Uint8Array {
    const arena = this.arena;
    const half = arena ? Math.floor(arena.size / 2) : 0;
    if (arena && total <= half) return arena.view(k * half, half);
    let buf = this.buffers[k];
    if (!buf || buf.length < total) buf = this.buffers[k] = Buffer.allocUnsafe(Math.max(total, (buf?.length ?? 0) * 2));
    return buf;
  }

  /** Reads `wants` and hands each its bytes (a view into the batch's buffer). */
  async read<T>(
    wants: readonly RangeWant<T>[],
    signal: AbortSignal | undefined,
    onWant: (item: T, bytes: Uint8Array) => void,
  ): Promise<void> {
    const groups = coalesceRanges(wants, this.maxGap, this.maxSpan);
    let total = 0;
    for (const g of groups) total += g.length;
    const k = this.turn;
    this.turn ^= 1;
    const buf = this.room(k, total);
    const slots: Uint8Array[] = [];
    for (let at = 0, i = 0; i < groups.length; at += groups[i++]!.length)
      slots.push(new Uint8Array(buf.buffer, buf.byteOffset + at, groups[i]!.length));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < groups.length) {
        const i = next++;
        await this.fetcher.readInto(groups[i]!.offset, slots[i]!, signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.fetcher.hints.concurrency, groups.length) }, lane));
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      const slot = slots[i]!;
      for (const w of g.wants) onWant(w.item, slot.subarray(w.offset - g.offset, w.offset - g.offset + w.length));
    }
  }
}
