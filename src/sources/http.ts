import { DesAbortedError, DesChangedError, DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { checkRange } from "../io/source.js";
import { REMOTE_COST } from "../io/cost.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import { collectBody, describeAsk, planRangeBody } from "../io/range-response.js";
import type { RangeAsk, RangeExpect } from "../io/range-response.js";
import { TransientError, retryPolicy, withRetries } from "../io/retry.js";
import type { RetryPolicy } from "../io/retry.js";
import { Attempt, timeouts } from "../io/timeout.js";
import type { Timeouts } from "../io/timeout.js";
import { fetchTransport, nodeTransport } from "./http-transport.js";
import type { HttpAnswer, HttpTransport } from "./http-transport.js";

export { parseContentRange } from "../io/range-response.js";
export type { ContentRange } from "../io/range-response.js";
export { backoffDelay, sleep } from "../io/retry.js";

/**
 * Batching for object stores and CDNs: a request costs a round trip
 * (20-50 ms) and a connection moves ~85 MB/s, so bytes between two wanted
 * ranges are worth reading when the gap is under ~1 MiB; merged reads stop at
 * 8 MiB (the range size object stores serve best); 8 requests in flight.
 */
export const REMOTE_HINTS: ReadHints = {
  maxGap: 1 << 20,
  maxSpan: 8 << 20,
  concurrency: 8,
  tailBytes: 64 << 10,
  cost: REMOTE_COST,
  learnCost: true,
};

/** Drops presigning parameters so the same object has the same `key` whoever signed the URL. */
function stableKey(url: string): string {
  try {
    const u = new URL(url);
    for (const name of [...u.searchParams.keys()]) {
      if (/^x-amz-/i.test(name) || /^(signature|expires|awsaccesskeyid)$/i.test(name)) u.searchParams.delete(name);
    }
    u.hash = "";
    return u.toString();
  } catch {
    return url;
  }
}

export interface HttpSourceOptions {
  /** Sent with every request (e.g. `Authorization`). `Range` and `If-Match` are set by the source. */
  headers?: Record<string, string>;
  /**
   * A fetch implementation to send the requests with. Default: Node's
   * `http`/`https` modules with keep-alive agents, which cost the client
   * less time per request than the global `fetch` (URLs of other schemes go
   * to the global `fetch`).
   */
  fetch?: typeof globalThis.fetch;
  /** Overrides of the coalescing defaults (`REMOTE_HINTS`). */
  hints?: Partial<ReadHints>;
  /**
   * Extra attempts per read after a network error, a 5xx or 429 response, or
   * a body that ends early. Default 3, so a read costs at most 4 requests.
   */
  retries?: number;
  /** First backoff step in ms (doubling, full jitter). Default 100. */
  retryBaseMs?: number;
  /** Largest backoff step in ms. Default 2000. */
  retryMaxMs?: number;
  /**
   * Longest wait from sending a request to its response headers, ms
   * (connecting included). Default 30,000. A timeout is retried like a
   * network error.
   */
  responseTimeoutMs?: number;
  /** Longest pause between two chunks of a response body, ms. Default 30,000; retried too. */
  bodyTimeoutMs?: number;
  /**
   * Fail with DES_IO when the server ignores `Range` (answers 200 with the
   * whole object). Default false: such answers are read only up to the end
   * of the range asked for, then the connection is dropped.
   */
  requireRanges?: boolean;
  /** Cache key. Default: the URL without presigning parameters. */
  key?: string;
}

/** Statistics of one HttpSource (requests include retries). */
export interface HttpSourceStats {
  requests: number;
  /** Body bytes received. */
  bytes: number;
  retries: number;
  /** Answers that ignored `Range` (200 instead of 206). */
  ignoredRanges: number;
}

/**
 * Range reads over plain HTTP(S): presigned S3 URLs, CDNs, any server with
 * Range support. Opens with one GET of a suffix range (no HEAD) and learns
 * the size from `Content-Range`. Every response's ETag (or Last-Modified when
 * the server sends no ETag) must match the one seen at open; a strong ETag is
 * also sent as `If-Match`, so a replaced object fails with DesChangedError
 * instead of mixing bytes of two versions.
 */
export class HttpSource implements RangeSource {
  readonly url: string;
  readonly key: string;
  readonly hints: ReadHints;
  readonly stats: HttpSourceStats = { requests: 0, bytes: 0, retries: 0, ignoredRanges: 0 };
  private readonly headers: Record<string, string>;
  private readonly transport: HttpTransport;
  private readonly policy: RetryPolicy;
  private readonly limits: Timeouts;
  private readonly requireRanges: boolean;
  private knownSize: number | undefined;
  /** The validator learned at the last `readTail`: an ETag, or `lm:<Last-Modified>`. */
  private current: string | undefined;

  constructor(url: string, opts: HttpSourceOptions = {}) {
    if (typeof url !== "string" || url.length === 0) throw new DesInvalidArgumentError("HttpSource needs a URL");
    this.url = url;
    this.key = opts.key ?? stableKey(url);
    this.hints = { ...REMOTE_HINTS, ...opts.hints };
    this.headers = { ...opts.headers };
    if (opts.fetch !== undefined && typeof opts.fetch !== "function")
      throw new DesInvalidArgumentError("fetch must be a function");
    if (opts.fetch) this.transport = fetchTransport(opts.fetch);
    else {
      const fallback: HttpTransport = (u, h, s) =>
        typeof globalThis.fetch === "function"
          ? fetchTransport(globalThis.fetch)(u, h, s)
          : Promise.reject(new Error(`no transport for ${new URL(u).protocol} URLs`));
      this.transport = nodeTransport(fallback);
    }
    this.policy = retryPolicy(opts.retries, opts.retryBaseMs, opts.retryMaxMs, 3);
    this.limits = timeouts(opts);
    this.requireRanges = opts.requireRanges ?? false;
  }

  get size(): number | undefined {
    return this.knownSize;
  }

  /** The version token (ETag or `lm:<Last-Modified>`) learned at the last open. */
  get version(): string | undefined {
    return this.current;
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    if (!Number.isSafeInteger(length) || length <= 0)
      throw new DesInvalidArgumentError(`invalid tail length ${length}`);
    const got = await this.get({ tail: length }, { requireRanges: this.requireRanges }, undefined, signal);
    const size = got.total ?? got.bytes.length;
    this.knownSize = size;
    this.current = got.version;
    return got.version === undefined ? { bytes: got.bytes, size } : { bytes: got.bytes, size, version: got.version };
  }

  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.knownSize, this.key);
    if (length === 0) return new Uint8Array(0);
    const expect = version ?? this.current;
    const got = await this.get(
      { offset, length },
      { size: this.knownSize, version: expect, requireRanges: this.requireRanges },
      expect,
      signal,
    );
    return got.bytes;
  }

  /** One logical GET (retried): the headers checked against what the opening knows, then the body bytes asked for. */
  private get(
    ask: RangeAsk,
    expect: RangeExpect,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; total: number | undefined; version: string | undefined }> {
    const range = describeAsk(ask);
    return withRetries(
      this.policy,
      signal,
      async () => {
        const attempt = new Attempt(signal, this.limits, `GET ${this.key} ${range}`);
        try {
          const res = await this.request(range, ifMatch, attempt);
          if (res.status === 412) {
            await res.cancel();
            throw new DesChangedError(`${this.key} changed (If-Match ${ifMatch} failed)`);
          }
          if (res.status !== 200 && res.status !== 206 && res.status !== 416) throw await statusError(res, this.key);
          const version = validatorOf(res);
          const len = res.header("content-length");
          let plan;
          try {
            plan = planRangeBody(
              ask,
              {
                status: res.status,
                contentRange: res.header("content-range"),
                contentLength: len !== null && /^\d+$/.test(len) ? Number(len) : undefined,
                version,
              },
              expect,
              this.key,
            );
          } catch (e) {
            await res.cancel();
            throw e;
          }
          if (res.status === 200) this.stats.ignoredRanges++;
          // An empty object's answer carries no bytes we read: release it, or its connection stays taken.
          if (plan.kind === "empty") await res.cancel();
          const body = await collectBody(res.body, plan, attempt, this.key);
          this.stats.bytes += body.received;
          return { bytes: body.bytes, total: body.total, version };
        } finally {
          attempt.done();
        }
      },
      (e, attempts) => new DesIoError(`${e.message} (after ${attempts} attempts)`, { cause: e.cause ?? e }),
      () => this.stats.retries++,
    );
  }

  private async request(range: string, ifMatch: string | undefined, attempt: Attempt): Promise<HttpAnswer> {
    const headers: Record<string, string> = { ...this.headers, range, "accept-encoding": "identity" };
    // If-Match needs a strong ETag; weak ETags and Last-Modified are only compared on the response.
    if (ifMatch !== undefined && ifMatch.startsWith('"')) headers["if-match"] = ifMatch;
    this.stats.requests++;
    let res: HttpAnswer;
    try {
      res = await this.transport(this.url, headers, attempt.signal);
    } catch (e) {
      if (attempt.timedOut) throw attempt.timeoutError();
      if (attempt.signal.aborted) throw new DesAbortedError(undefined, { cause: attempt.signal.reason });
      throw new TransientError(`request to ${this.key} failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status >= 500 || res.status === 429) {
      await res.cancel();
      throw new TransientError(`${this.key}: HTTP ${res.status}`);
    }
    return res;
  }
}

function validatorOf(res: HttpAnswer): string | undefined {
  const etag = res.header("etag");
  if (etag) return etag;
  const lm = res.header("last-modified");
  return lm ? `lm:${lm}` : undefined;
}

async function statusError(res: HttpAnswer, key: string): Promise<DesIoError> {
  let detail = "";
  try {
    detail = await res.text(200);
  } catch {
    // the body is only for the message
  }
  return new DesIoError(`${key}: HTTP ${res.status}${detail ? ` ${detail}` : ""}`);
}
