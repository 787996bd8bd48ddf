import { DesAbortedError } from "../errors.js";

/**
 * One real "abort" listener per signal, however many operations wait on it.
 * A caller who passes one signal to hundreds of concurrent calls would
 * otherwise hang hundreds of listeners on it (and Node prints a
 * MaxListenersExceededWarning past ten); each of our waiters is one entry in
 * a set instead, removed as soon as its operation settles.
 */
const hubs = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts; the returned function unsubscribes. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = hubs.get(signal);
  if (!set) {
    const waiting = new Set<() => void>();
    set = waiting;
    hubs.set(signal, waiting);
    signal.addEventListener(
      "abort",
      () => {
        hubs.delete(signal);
        for (const f of [...waiting]) f();
        waiting.clear();
      },
      { once: true },
    );
  }
  const s = set;
  s.add(fn);
  return () => {
    s.delete(fn);
  };
}

export function abortedError(signal: AbortSignal): DesAbortedError {
  return new DesAbortedError(undefined, { cause: signal.reason });
}

/** `promise`, or a DesAbortedError as soon as `signal` aborts (the promise itself is left to settle). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortedError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, () => reject(abortedError(signal)));
    promise.then(
      (v) => {
        off();
        resolve(v);
      },
      (e: unknown) => {
        off();
        reject(e);
      },
    );
  });
}
