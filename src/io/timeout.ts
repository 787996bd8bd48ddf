import { DesInvalidArgumentError } from "../errors.js";
import { TransientError } from "./retry.js";

/**
 * Timeouts of one remote request, the same for HTTP and S3:
 * - `responseTimeoutMs`: from sending the request to the response headers
 *   (connecting, TLS and the server's think time included);
 * - `bodyTimeoutMs`: the longest pause between two chunks of the body.
 * A timeout aborts that attempt only; it is a transient failure, retried by
 * the retry policy like a reset connection, and becomes DES_IO at the end.
 */
export interface Timeouts {
  readonly responseTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { responseTimeoutMs: 30_000, bodyTimeoutMs: 30_000 };

export function timeouts(opts: {
  responseTimeoutMs?: number | undefined;
  bodyTimeoutMs?: number | undefined;
}): Timeouts {
  const t = {
    responseTimeoutMs: opts.responseTimeoutMs ?? DEFAULT_TIMEOUTS.responseTimeoutMs,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_TIMEOUTS.bodyTimeoutMs,
  };
  for (const [name, v] of Object.entries(t)) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new DesInvalidArgumentError(`${name} must be a positive integer (ms)`);
  }
  return t;
}

/** The request timed out (transient). */
export class TimeoutError extends TransientError {}

/**
 * The abort signal of one attempt: aborted when the caller's signal aborts,
 * or when the current phase's timer runs out. `body()` switches to the idle
 * timer, `touch()` restarts it on every chunk.
 */
export class Attempt {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private expired = false;
  private readonly outer: AbortSignal | undefined;
  private readonly onOuter = (): void => this.controller.abort(this.outer?.reason);

  constructor(
    outer: AbortSignal | undefined,
    private readonly limits: Timeouts,
    private readonly what: string,
  ) {
    this.outer = outer;
    this.signal = this.controller.signal;
    if (outer?.aborted) this.controller.abort(outer.reason);
    else outer?.addEventListener("abort", this.onOuter, { once: true });
    this.arm(limits.responseTimeoutMs, `no response within ${limits.responseTimeoutMs} ms`);
  }

  /** True when this attempt was ended by its timer (not by the caller). */
  get timedOut(): boolean {
    return this.expired;
  }

  private arm(ms: number, why: string): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new TimeoutError(`${this.what}: ${why} (timed out)`));
    }, ms);
    // The request itself keeps the process alive; the timer must not.
    this.timer.unref?.();
  }

  /** The headers arrived: from now on only pauses in the body count. */
  body(): void {
    this.arm(this.limits.bodyTimeoutMs, `the body stalled for ${this.limits.bodyTimeoutMs} ms`);
  }

  /** The consumer holds the body (a stream yielded a chunk): pauses count only from `body()` again. */
  pause(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A chunk arrived. */
  touch(): void {
    this.timer?.refresh();
  }

  /** The error to throw for a failure of this attempt when it timed out. */
  timeoutError(): TimeoutError {
    const reason: unknown = this.signal.reason;
    return reason instanceof TimeoutError ? reason : new TimeoutError(`${this.what}: timed out`);
  }

  done(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.outer?.removeEventListener("abort", this.onOuter);
  }
}
