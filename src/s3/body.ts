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

/** Destroys `body` when `signal` aborts (the SDK stops watching the signal once the headers are in); returns the unhook. */
export function destroyOnAbort(body: unknown, signal: AbortSignal): () => void {
  if (!body) return () => undefined;
  const onAbort = (): void => {
    const reason: unknown = signal.reason;
    (body as Destroyable).destroy?.(reason instanceof Error ? reason : new Error("aborted"));
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/** The body as async-iterable chunks, however the SDK's runtime represents it. */
export function bodyChunks(body: unknown): AsyncIterable<Uint8Array> {
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function")
    return body as AsyncIterable<Uint8Array>;
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  if (b?.transformToByteArray) {
    const f = b.transformToByteArray.bind(b);
    return (async function* () {
      yield await f();
    })();
  }
  return (async function* () {})();
}
