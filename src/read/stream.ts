import { Readable, pipeline } from "node:stream";
import { DesChecksumError, DesError, DesFormatError, throwIfAborted } from "../errors.js";
import { decompressStream } from "../format/compression.js";
import { xxh64Stream } from "../format/hash.js";
import type { EntryRecord } from "../format/record.js";
import { checkReadable, isExternal } from "./entry.js";
import { checkExternalKey, resolveExternalKey, storeOf } from "./external.js";
import type { ExternalConfig } from "./external.js";
import { readMetaOf } from "./batch.js";
import type { Opening } from "./opening.js";

const STREAM_WINDOW = 8 << 20;

/** The stored bytes of a record: 8 MiB windows with two reads in flight, or the external store's stream. */
async function* storedChunks(
  o: Opening,
  rec: EntryRecord,
  cfg: ExternalConfig,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  if (isExternal(rec)) {
    const store = storeOf(rec, cfg);
    const key = await resolveExternalKey(rec, cfg, () => readMetaOf(o, rec, true, signal));
    checkExternalKey(key, rec, cfg);
    yield* store.stream(key, signal, { maxBytes: rec.storedSize });
    return;
  }
  const end = rec.dataOffset + rec.storedSize;
  let next = rec.dataOffset;
  const window = (): Promise<Uint8Array> | undefined => {
    if (next >= end) return undefined;
    const len = Math.min(STREAM_WINDOW, end - next);
    const p = o.fetcher.read(next, len, signal);
    // Observed now, awaited later: a failure while the previous window is consumed is not unhandled.
    p.catch(() => undefined);
    next += len;
    return p;
  };
  const queue: Promise<Uint8Array>[] = [];
  for (let i = 0; i < 2; i++) {
    const p = window();
    if (p) queue.push(p);
  }
  while (queue.length > 0) {
    const chunk = await queue.shift()!;
    const p = window();
    if (p) queue.push(p);
    yield chunk;
  }
}

/**
 * One entry's original bytes as they arrive, with bounded memory. The
 * stored length and checksum are checked as bytes pass (a mismatch fails
 * after the last chunk); inflation is capped at the size the index states.
 */
export async function* entryChunks(
  o: Opening,
  rec: EntryRecord,
  cfg: ExternalConfig,
  verify: boolean,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  checkReadable(rec);
  if (rec.storedSize === 0) return;
  const hash = verify && rec.dataHash !== undefined ? xxh64Stream() : undefined;
  let seen = 0;
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    for await (const chunk of storedChunks(o, rec, cfg, signal)) {
      throwIfAborted(signal);
      seen += chunk.length;
      if (seen > rec.storedSize) throw new DesFormatError(`${JSON.stringify(rec.name)} is longer than its index says`);
      hash?.update(chunk);
      yield chunk;
    }
    if (seen !== rec.storedSize)
      throw new DesFormatError(`${JSON.stringify(rec.name)} ended after ${seen} of ${rec.storedSize} bytes`);
    if (hash && hash.digest() !== rec.dataHash) throw new DesChecksumError({ kind: "data", name: rec.name });
  };
  if (rec.compression === "none") {
    yield* counted();
    return;
  }
  let out = 0;
  // pipeline, not pipe: pipe() does not forward a failure of `counted` (checksum,
  // length) to the inflater, which then waits forever while the error goes unhandled.
  const inflated = pipeline(Readable.from(counted()), decompressStream(rec.compression!), () => undefined);
  try {
    for await (const chunk of inflated) {
      out += (chunk as Uint8Array).length;
      if (out > rec.size) {
        inflated.destroy();
        throw new DesFormatError(`${JSON.stringify(rec.name)} inflates past its size ${rec.size}`);
      }
      yield chunk as Uint8Array;
    }
  } catch (e) {
    if (e instanceof DesError) throw e;
    // zlib's own errors (bad header, bad block) are plain Errors: corrupt stored bytes.
    throw new DesFormatError(
      `entry ${JSON.stringify(rec.name)}: ${rec.compression} data does not inflate: ${(e as Error).message}`,
      { cause: e },
    );
  } finally {
    inflated.destroy();
  }
  if (out !== rec.size)
    throw new DesFormatError(`${JSON.stringify(rec.name)} inflated to ${out} bytes, index says ${rec.size}`);
}
