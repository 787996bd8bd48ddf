import { DesAbortedError, DesIoError } from "../errors.js";
import { concatBytes } from "../format/bytes.js";

/** A body that ended early or broke midway: worth one more GET (the SDK does not retry these). */
export class BodyError extends Error {}

interface Destroyable {
  destroy?(error?: Error): void;
  cancel?(): Promise<void>;
}

/** Releases a response body we will not read (frees the connection). */
export function discardBody(body: unknown): void {
  const b = body as Destroyable | undefined;
  try {
    if (b?.destroy) b.destroy();
    else void b?.cancel?.().catch(() => undefined);
  } catch {
    // nothing to release
  }
}

/** The body as async-iterable chunks, however the SDK's runtime represents it. */
export function bodyChunks(body: unknown): AsyncIterable<Uint8Array> {
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") return body as AsyncIterable<Uint8Array>;
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  if (b?.transformToByteArray) {
    const f = b.transformToByteArray.bind(b);
    return (async function* () {
      yield await f();
    })();
  }
  return (async function* () {})();
}

/**
 * Reads a GetObject body. With `expected`, exactly that many bytes into one
 * buffer: fewer (a short body) or a stream error midway is a BodyError; more
 * is a DesIoError. Aborting `signal` destroys the stream.
 */
export async function readBody(body: unknown, expected: number | undefined, signal?: AbortSignal): Promise<Uint8Array> {
  if (body === undefined || body === null) {
    if (!expected) return new Uint8Array(0);
    throw new BodyError(`no body, expected ${expected} bytes`);
  }
  const onAbort = (): void => {
    (body as Destroyable).destroy?.(new DesAbortedError(undefined, { cause: signal?.reason }));
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const out = expected !== undefined ? new Uint8Array(expected) : undefined;
  const chunks: Uint8Array[] = [];
  let got = 0;
  try {
    try {
      for await (const c of bodyChunks(body)) {
        if (out) {
          if (got + c.length > out.length) {
            discardBody(body);
            throw new DesIoError(`the response body is longer than the ${expected} bytes asked for`);
          }
          out.set(c, got);
        } else {
          chunks.push(c);
        }
        got += c.length;
      }
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
      throw new BodyError(`the response body failed after ${got} bytes: ${(e as Error).message}`, { cause: e });
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
  if (out) {
    if (got !== out.length) throw new BodyError(`short body: ${got} of ${out.length} bytes`);
    return out;
  }
  return concatBytes(chunks);
}
