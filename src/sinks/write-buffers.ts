/**
 * The 1 MiB buffers file sinks fill before each write, kept for the next
 * sink once one is done. A store seals hundreds of small parts one after
 * another: without reuse every part allocates two fresh buffers, and that
 * much short-lived memory outside the JavaScript heap makes V8 run a full
 * collection every few parts.
 */
export const WRITE_BUFFER = 1 << 20;
/** Buffers kept for reuse (two per sink at most are in use at once). */
const KEEP = 4;
const free: Buffer[] = [];

/** A buffer of WRITE_BUFFER bytes, the caller's alone until it gives it back. */
export function takeWriteBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(WRITE_BUFFER);
}

/** Gives back a buffer from takeWriteBuffer that nothing reads or writes any more. */
export function giveWriteBuffer(buf: Buffer | undefined): void {
  if (buf && buf.length === WRITE_BUFFER && free.length < KEEP && !free.includes(buf)) free.push(buf);
}
