import { DesAbortedError } from "../errors.js";
import { abortedError, onAbort } from "./abort.js";

/**
 * Work shared by several callers (a reopen, a batch of index pages). It runs
 * under its own AbortController, never under the first caller's signal: one
 * caller giving up must not fail the others. The work is cancelled only when
 * every caller has gone; a caller without a signal never goes, so work joined
 * by one runs to the end. Work started for a first caller without a signal
 * can never be cancelled, so it runs without a controller (and the work
 * sees no signal): the cold path then sets up no abort machinery at all.
 */
export class SharedTask<T> {
  readonly promise: Promise<T>;
  private readonly controller: AbortController | undefined;
  private waiting = 0;
  private unbounded: boolean;
  private settled = false;

  /** `firstSignal`: the signal of the caller that starts the work (undefined: it never gives up). */
  constructor(task: (signal: AbortSignal | undefined) => Promise<T>, firstSignal?: AbortSignal) {
    this.unbounded = firstSignal === undefined;
    this.controller = this.unbounded ? undefined : new AbortController();
    this.promise = task(this.controller?.signal);
    this.promise.then(
      () => {
        this.settled = true;
      },
      () => {
        this.settled = true;
      },
    );
  }

  /** True once every caller left and the work was cancelled: do not join it any more. */
  get cancelled(): boolean {
    return this.controller?.signal.aborted ?? false;
  }

  join(signal?: AbortSignal): Promise<T> {
    if (!signal) {
      this.unbounded = true;
      return this.promise;
    }
    if (signal.aborted) return Promise.reject(abortedError(signal));
    this.waiting++;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const off = onAbort(signal, () => {
        left = true;
        this.leave();
        reject(abortedError(signal));
      });
      this.promise.then(
        (v) => {
          off();
          if (!left) resolve(v);
        },
        (e: unknown) => {
          off();
          if (!left) reject(e);
        },
      );
    });
  }

  private leave(): void {
    this.waiting--;
    if (this.waiting === 0 && !this.unbounded && !this.settled)
      this.controller?.abort(new DesAbortedError("every caller gave up"));
  }
}

/**
 * Shared work in flight by key. One task may serve several keys (a batch of
 * index pages); a caller joins the task of each key it needs.
 */
export class SharedRegistry {
  private readonly tasks = new Map<string, SharedTask<unknown>>();

  /** The live task serving `key`, if any. */
  get<T>(key: string): SharedTask<T> | undefined {
    const t = this.tasks.get(key);
    return t && !t.cancelled ? (t as SharedTask<T>) : undefined;
  }

  /** Starts `work` for a first caller with `firstSignal`, as the task serving every key of `keys` until it settles. */
  start<T>(
    keys: readonly string[],
    work: (signal: AbortSignal | undefined) => Promise<T>,
    firstSignal?: AbortSignal,
  ): SharedTask<T> {
    const t = new SharedTask<T>(work, firstSignal);
    for (const k of keys) this.tasks.set(k, t as SharedTask<unknown>);
    const drop = (): void => {
      for (const k of keys) if (this.tasks.get(k) === t) this.tasks.delete(k);
    };
    t.promise.then(drop, drop);
    return t;
  }
}
