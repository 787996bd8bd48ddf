import fs from "node:fs";

/**
 * How a journal's bytes reach its file: the slabs records are encoded into
 * before their group's writev, and the file calls the journal makes.
 */

/** Records up to this size are carved from slabs; bigger ones get a buffer of their own. */
const SLAB_RECORD = 64 << 10;
const SLAB = 1 << 20;
/** Written-out slabs kept for reuse. */
const SPARE_SLABS = 4;

/**
 * A block of memory that queued records are encoded into, back to back. A
 * record's bytes are needed only until its group's writev, which is
 * synchronous: once every record carved from a full slab is written, the
 * slab is reused, so encoding a record allocates nothing.
 */
export interface Slab {
  readonly buf: Buffer;
  at: number;
  /** Records carved from it and not yet written. */
  unwritten: number;
}

/** The slab records are carved from now, and the written-out ones kept for reuse. */
export class SlabPool {
  private current: Slab | undefined;
  private readonly spare: Slab[] = [];

  /** Memory for one record of `length` bytes, and the slab it was carved from (none for a big record). */
  carve(length: number): { bytes: Buffer; slab: Slab | undefined } {
    if (length > SLAB_RECORD) return { bytes: Buffer.allocUnsafe(length), slab: undefined };
    const slab = this.slabFor(length);
    const bytes = slab.buf.subarray(slab.at, slab.at + length);
    slab.at += length;
    slab.unwritten++;
    return { bytes, slab };
  }

  /** One record carved from `slab` is in the file: a full slab with none left unwritten is reused. */
  written(slab: Slab): void {
    if (--slab.unwritten === 0 && slab !== this.current && this.spare.length < SPARE_SLABS) this.spare.push(slab);
  }

  /** The current slab when `length` more bytes fit in it, else a spare or a new one. */
  private slabFor(length: number): Slab {
    const cur = this.current;
    if (cur && cur.at + length <= SLAB) return cur;
    if (cur && cur.unwritten === 0 && this.spare.length < SPARE_SLABS) this.spare.push(cur);
    const next = this.spare.pop() ?? { buf: Buffer.allocUnsafeSlow(SLAB), at: 0, unwritten: 0 };
    next.at = 0;
    this.current = next;
    return next;
  }
}

export function fsCall<T>(fn: (cb: (e: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
}

const ZERO_CHUNK = 1 << 20;
let ZEROS: Buffer | undefined;

/** Writes zeros over [from, to) of `fd` with thread-pool writes. */
export async function writeZeros(fd: number, from: number, to: number): Promise<void> {
  ZEROS ??= Buffer.alloc(ZERO_CHUNK);
  const zeros = ZEROS;
  for (let pos = from; pos < to;) {
    const len = Math.min(ZERO_CHUNK, to - pos);
    pos += await fsCall<number>((cb) => fs.write(fd, zeros, 0, len, pos, cb));
  }
}

/** `bufs` without their first `n` bytes (what a short writev left to write). */
export function dropBytes(bufs: NodeJS.ArrayBufferView[], n: number): NodeJS.ArrayBufferView[] {
  const out: NodeJS.ArrayBufferView[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    out.push(skip > 0 ? new Uint8Array(b.buffer, b.byteOffset + skip, b.byteLength - skip) : b);
    skip = 0;
  }
  return out;
}
