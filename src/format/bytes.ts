import { DesFormatError } from "../errors.js";

const encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF (the default strips it, merging "\ufeffa" into "a").
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes UTF-8, failing with DesFormatError on malformed bytes (archive names must round-trip). */
export function utf8Decode(bytes: Uint8Array, what = "name"): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new DesFormatError(`${what} is not valid UTF-8`);
  }
}

/** Unsigned bytewise comparison, the order of names in v2 pages. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const TWO_32 = 2 ** 32;

/** Growable little-endian encoder. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
    return this;
  }

  /** A safe integer as u64. */
  u64(v: number): this {
    this.ensure(8);
    this.view.setUint32(this.length, v % TWO_32, true);
    this.view.setUint32(this.length + 4, Math.floor(v / TWO_32), true);
    this.length += 8;
    return this;
  }

  u64big(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, v, true);
    this.length += 8;
    return this;
  }

  varint(v: number): this {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  /**
   * Room for `n` more bytes, for encoders that write in place: they write at
   * `at` of `buf` (or `view`) and then set `length` to where they stopped.
   */
  reserve(n: number): { buf: Uint8Array; view: DataView; at: number } {
    this.ensure(n);
    return { buf: this.buf, view: this.view, at: this.length };
  }

  /** A view of what was written (shares memory until the next write grows the buffer). */
  view_(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Writes `v` as an unsigned LEB128 varint at `o` of `buf` (which has room); returns the offset after it. */
export function putVarint(buf: Uint8Array, o: number, v: number): number {
  if (v < 0x80000000) {
    // Integer arithmetic below 2^31 (nearly every value): no floating-point modulo.
    let x = v | 0;
    while (x >= 0x80) {
      buf[o++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buf[o++] = x;
    return o;
  }
  while (v >= 0x80) {
    buf[o++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[o++] = v;
  return o;
}

export function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/**
 * Bounds-checked little-endian decoder over bytes that came from an archive.
 * Every read that would pass the end is a DesFormatError, so corrupt input can
 * never make us read garbage or allocate from a bogus length.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  pos: number;
  readonly end: number;
  private readonly what: string;

  constructor(bytes: Uint8Array, what: string, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
    this.what = what;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(message: string): never {
    throw new DesFormatError(`${this.what}: ${message}`);
  }

  private need(n: number): void {
    if (n > this.end - this.pos) this.fail(`truncated (needs ${n} bytes at ${this.pos}, has ${this.end - this.pos})`);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** u64 that must be a safe integer (offsets, lengths, counts). */
  u64(field: string): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi >= 0x200000) this.fail(`${field} is too large`);
    return hi * TWO_32 + lo;
  }

  u64big(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  varint(field: string): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1);
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail(`${field} is too large`);
        return result;
      }
      scale *= 0x80;
    }
    return this.fail(`${field}: varint longer than 8 bytes`);
  }

  /** A sub-view (no copy) of the next n bytes. */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}
