/** Deterministic blob bodies for store tests: 0..2000 bytes, a function of k alone. */
export function blobFor(k: number): Uint8Array {
  const len = (k * 7919) % 2001;
  const b = new Uint8Array(len);
  let x = (k * 2654435761 + 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Byte equality without a deep-equality walk (which costs milliseconds per kilobyte). */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return (
    a !== undefined &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
  );
}
