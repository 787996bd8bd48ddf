import { DesAbortedError, DesChangedError, DesIoError } from "../errors.js";
import type { DesError } from "../errors.js";

/** What the SDK tells us about a failed call: HTTP status and S3 error code. */
export function s3Status(e: unknown): { status: number | undefined; code: string | undefined } {
  if (!e || typeof e !== "object") return { status: undefined, code: undefined };
  const err = e as {
    $metadata?: { httpStatusCode?: number };
    $response?: { statusCode?: number };
    name?: string;
    Code?: string;
  };
  return { status: err.$metadata?.httpStatusCode ?? err.$response?.statusCode, code: err.Code ?? err.name };
}

export function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (e instanceof Error && (e.name === "AbortError" || e instanceof DesAbortedError));
}

export function isPreconditionFailed(e: unknown): boolean {
  const { status, code } = s3Status(e);
  return status === 412 || code === "PreconditionFailed";
}

export function isNotFound(e: unknown): boolean {
  const { status, code } = s3Status(e);
  return status === 404 || code === "NoSuchKey" || code === "NotFound" || code === "NoSuchVersion";
}

export function isInvalidRange(e: unknown): boolean {
  const { status, code } = s3Status(e);
  return status === 416 || code === "InvalidRange";
}

function describe(e: unknown): string {
  const { status, code } = s3Status(e);
  const msg = e instanceof Error ? e.message : String(e);
  return `${code ?? "error"}${status !== undefined ? ` (HTTP ${status})` : ""}: ${msg}`;
}

/**
 * Maps an SDK failure of a GET to a typed error. The SDK has already retried
 * what it retries (5xx, throttling such as 503 SlowDown, connection errors
 * before the response), so anything that reaches us here is final.
 */
export function mapGetError(e: unknown, location: string, signal?: AbortSignal): DesError {
  if (isAbort(e, signal))
    return e instanceof DesAbortedError ? e : new DesAbortedError(undefined, { cause: signal?.reason ?? e });
  if (isPreconditionFailed(e)) return new DesChangedError(`${location} changed (If-Match failed)`, { cause: e });
  if (isNotFound(e)) return new DesIoError(`${location} does not exist: ${describe(e)}`, { cause: e });
  return new DesIoError(`GET ${location} failed: ${describe(e)}`, { cause: e });
}

export { describe as describeS3Error };
