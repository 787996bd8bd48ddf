import { DesAbortedError } from "../errors.js";
import { onAbort } from "./abort.js";

type Entry = [string, Uint8Array];

/**
 * Turns a producer that delivers entries by callback into an async
 * iterator: entries are yielded as they arrive; `drained` lets the producer
 * wait until the consumer has taken everything delivered (the memory bound
 * of `iterMany`); leaving the loop early aborts the producer's signal; a
 * restart (`mayRetry`) is allowed only while nothing has been yielded, and
 * drops what was delivered but not yet taken.
 */
export async function* deliveries(
  callerSignal: AbortSignal | undefined,
  produce: (
    deliver: (name: string, bytes: Uint8Array) => void,
    drained: () => Promise<void>,
    signal: AbortSignal,
    mayRetry: () => boolean,
  ) => Promise<void>,
): AsyncGenerator<Entry> {
  // Our own controller, following the caller's: leaving the loop early must cancel the reads.
  const stop = new AbortController();
  const unfollow = callerSignal ? onAbort(callerSignal, () => stop.abort(callerSignal.reason)) : undefined;
  if (callerSignal?.aborted) stop.abort(callerSignal.reason);
  const signal = stop.signal;
  let ready: Entry[] = [];
  let head = 0;
  let yielded = 0;
  let wake: (() => void) | undefined;
  let drainedWake: (() => void) | undefined;
  let outcome: { error: unknown } | "done" | undefined;
  const drained = (): Promise<void> => {
    if (head >= ready.length || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => (drainedWake = resolve));
  };
  const deliver = (name: string, bytes: Uint8Array): void => {
    ready.push([name, bytes]);
    wake?.();
  };
  const mayRetry = (): boolean => {
    if (yielded > 0) return false;
    ready = [];
    head = 0;
    return true;
  };
  const producing = produce(deliver, drained, signal, mayRetry).then(
    () => {
      outcome = "done";
      wake?.();
    },
    (error: unknown) => {
      outcome = { error };
      wake?.();
    },
  );
  try {
    for (;;) {
      if (head < ready.length) {
        const item = ready[head]!;
        ready[head++] = undefined as unknown as Entry; // let it go once yielded
        if (head === ready.length) {
          ready = [];
          head = 0;
          drainedWake?.();
          drainedWake = undefined;
        }
        yielded++;
        yield item;
        continue;
      }
      if (outcome === "done") return;
      if (outcome) throw outcome.error;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    unfollow?.();
    if (!outcome) stop.abort(new DesAbortedError("the consumer stopped iterating"));
    drainedWake?.();
    await producing;
  }
}
