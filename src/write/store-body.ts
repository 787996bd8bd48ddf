import { Readable, pipeline } from "node:stream";
import { compressStream, compressSync } from "../format/compression.js";
import type { Compression } from "../format/constants.js";
import { xxh64, xxh64Stream } from "../format/hash.js";
import type { ExternalStore } from "../io/external.js";
import { chunksOf } from "./body.js";
import type { Body } from "./body.js";
import type { Output } from "./output.js";

/** Where a body went and what it hashed to. */
export interface StoredBody {
  /** Bytes stored (after compression). */
  readonly stored: number;
  /** Bytes of the body itself. */
  readonly original: number;
  /** xxh64 of the stored bytes; 0 when there are none. */
  readonly hash: bigint;
  /** Offset of the stored bytes in the archive (0 for an external body). */
  readonly offset: number;
}

/**
 * Writes a body into DATA, compressed with `compression`. A failing or
 * aborted source rejects (its own error: the caller decides what it means
 * for the writer); a failing sink has poisoned `out` already.
 */
export async function writeInternal(
  out: Output,
  body: Body,
  compression: Compression,
  level: number | undefined,
  signal: AbortSignal | undefined,
): Promise<StoredBody> {
  const offset = out.position;
  if (body.kind === "bytes") {
    const stored = compressSync(compression, body.bytes, level);
    if (stored.length > 0) await out.write(stored);
    return { stored: stored.length, original: body.bytes.length, hash: stored.length > 0 ? xxh64(stored) : 0n, offset };
  }
  const hash = xxh64Stream();
  let original = 0;
  let stored = 0;
  const source = chunksOf(body, signal);
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    for await (const c of source) {
      original += c.length;
      yield c;
    }
  };
  let chunks: AsyncIterable<unknown>;
  if (compression === "none") chunks = counted();
  else {
    // pipeline, not pipe: a source error destroys the compressor with it, so the loop below
    // rejects instead of an unhandled 'error' event (or a loop that never ends).
    const compressor = compressStream(compression, level);
    pipeline(Readable.from(counted()), compressor, () => undefined);
    chunks = compressor;
  }
  for await (const chunk of chunks) {
    const c = chunk as Uint8Array;
    if (c.length === 0) continue;
    hash.update(c);
    stored += c.length;
    await out.write(c);
  }
  // An empty body keeps the offset where it would have started, as the Python writer records it.
  return { stored, original, hash: stored > 0 ? hash.digest() : 0n, offset };
}

/** Streams a body to the external store under `key` (never compressed: spec 3.5). */
export async function writeExternal(
  store: ExternalStore,
  key: string,
  body: Body,
  signal: AbortSignal | undefined,
): Promise<StoredBody> {
  const hash = xxh64Stream();
  let n = 0;
  const source = chunksOf(body, signal);
  await store.put(
    key,
    (async function* () {
      for await (const c of source) {
        hash.update(c);
        n += c.length;
        yield c;
      }
    })(),
    signal,
  );
  return { stored: n, original: n, hash: n > 0 ? hash.digest() : 0n, offset: 0 };
}
