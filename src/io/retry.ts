import { DesAbortedError, DesInvalidArgumentError, throwIfAborted } from "../errors.js";
import type { DesError } from "../errors.js";

/**
 * The one retry policy of every remote backend (HTTP, S3 sources, S3
 * external bodies): a transient failure (a network error, a 5xx or 429, a
 * body that breaks or ends early, a timeout) is tried again after a bounded
 * exponential backoff with jitter; anything else fails at once.
 */

/** A failure worth another attempt. Never leaves the library: the loop turns it into a DesError. */
export class TransientError extends Error {}

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Extra attempts after the first. */
  readonly retries: number;
  /** First backoff step, ms (doubling, jittered). */
  readonly baseMs: number;
  /** Largest backoff step, ms. */
  readonly maxMs: number;
}

/** Builds a policy from user options, validating each number. */
export function retryPolicy(
  retries: number | undefined,
  baseMs: number | undefined,
  maxMs: number | undefined,
  defaultRetries: number,
): RetryPolicy {
  const p = { retries: retries ?? defaultRetries, baseMs: baseMs ?? 100, maxMs: maxMs ?? 2000 };
  if (!Number.isSafeInteger(p.retries) || p.retries < 0)
    throw new DesInvalidArgumentError("retries must be a non-negative integer");
  if (!Number.isFinite(p.baseMs) || p.baseMs < 0)
    throw new DesInvalidArgumentError("retryBaseMs must be a non-negative number");
  if (!Number.isFinite(p.maxMs) || p.maxMs < 0)
    throw new DesInvalidArgumentError("retryMaxMs must be a non-negative number");
  return p;
}

/** Bounded exponential backoff with jitter: attempt 1 waits between base/2 and base, then 2x, 4x ... capped at `max`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Waits `ms`, or rejects with DesAbortedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new DesAbortedError(undefined, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Called after attempt `attempt` (0 = the first) failed with `error`: a
 * non-transient error is rethrown as is; a transient one past the policy
 * becomes `giveUp(error, attempts)`; otherwise waits the backoff and returns
 * (the caller tries again).
 */
export async function pauseBeforeRetry(
  policy: RetryPolicy,
  attempt: number,
  error: unknown,
  signal: AbortSignal | undefined,
  giveUp: (e: TransientError, attempts: number) => DesError,
  onRetry?: () => void,
): Promise<void> {
  if (!(error instanceof TransientError)) throw error;
  if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
  if (attempt >= policy.retries) throw giveUp(error, attempt + 1);
  onRetry?.();
  await sleep(backoffDelay(attempt + 1, policy.baseMs, policy.maxMs), signal);
}

/** Runs `attempt` until it succeeds, fails with a non-transient error, or the policy gives up. */
export async function withRetries<T>(
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (n: number) => Promise<T>,
  giveUp: (e: TransientError, attempts: number) => DesError,
  onRetry?: () => void,
): Promise<T> {
  for (let n = 0; ; n++) {
    throwIfAborted(signal);
    try {
      return await attempt(n);
    } catch (e) {
      await pauseBeforeRetry(policy, n, e, signal, giveUp, onRetry);
    }
  }
}
