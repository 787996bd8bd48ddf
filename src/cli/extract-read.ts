import type { DesReader } from "../index.js";
import { DesAbortedError, DesChangedError, DesChecksumError, DesClosedError, DesError, DesIoError } from "../errors.js";

/**
 * True for an error about one entry (its bytes fail their checksum, do not
 * decode, use something this reader lacks): that entry fails, the others go
 * on. Anything else (storage, interrupt, the archive changing) stops the run.
 */
function entryError(e: unknown): boolean {
  return (
    e instanceof DesError &&
    !(
      e instanceof DesAbortedError ||
      e instanceof DesIoError ||
      e instanceof DesChangedError ||
      e instanceof DesClosedError
    )
  );
}

/** The entry a checksum error names, if it is one of `names`. */
function damaged(e: unknown, names: ReadonlySet<string>): string | undefined {
  if (!(e instanceof DesChecksumError)) return undefined;
  const s = e.subject;
  return (s.kind === "data" || s.kind === "meta") && names.has(s.name) ? s.name : undefined;
}

/**
 * Reads the bodies of one batch of entries and hands each to `take` as its
 * read arrives. A damaged entry goes to `failed` and the rest of the batch
 * is read again; after a second one, or an error that names no entry of the
 * batch, the entries left are read one at a time, so each damaged one fails
 * alone. Errors thrown by `take` and errors that are not about one entry
 * propagate.
 */
export async function readBatch(
  reader: DesReader,
  names: readonly string[],
  opts: { readonly signal: AbortSignal; readonly waveBytes: number },
  take: (name: string, body: Uint8Array) => Promise<void>,
  failed: (name: string, e: unknown) => void,
): Promise<void> {
  const left = new Set(names);
  let again = true;
  while (left.size > 0) {
    let taking = false;
    try {
      for await (const [name, body] of reader.iterMany([...left], {
        signal: opts.signal,
        maxBatchBytes: opts.waveBytes,
      })) {
        left.delete(name);
        taking = true;
        await take(name, body);
        taking = false;
      }
      return;
    } catch (e) {
      if (taking || opts.signal.aborted || !entryError(e)) throw e;
      const bad = damaged(e, left);
      if (bad === undefined || !again) break;
      again = false;
      left.delete(bad);
      failed(bad, e);
    }
  }
  for (const name of [...left]) {
    let body: Uint8Array;
    try {
      body = await reader.get(name, { signal: opts.signal });
    } catch (e) {
      if (opts.signal.aborted || !entryError(e)) throw e;
      failed(name, e);
      continue;
    }
    await take(name, body);
  }
}
