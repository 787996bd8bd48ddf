import { DesAbortedError, DesChangedError, DesFormatError, DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { checkRange } from "../io/source.js";
import { REMOTE_COST } from "../io/cost.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import { concatBytes } from "../format/bytes.js";

/**
 * Batching for object stores and CDNs: a request costs a round trip
 * (20-50 ms) and a connection moves ~85 MB/s, so bytes between two wanted
 * ranges are worth reading when the gap is under ~1 MiB; merged reads stop at
 * 8 MiB (the range size object stores serve best); 8 requests in flight.
 */
export const REMOTE_HINTS: ReadHints = { maxGap: 1 << 20, maxSpan: 8 << 20, concurrency: 8, tailBytes: 64 << 10, cost: REMOTE_COST };

/** A parsed `Content-Range`: `bytes <start>-<end>/<total>` (total may be a star), or a star range with a total on a 416. */
export interface ContentRange {
  readonly start: number | undefined;
  readonly end: number | undefined;
  readonly total: number | undefined;
}

export function parseContentRange(value: string | null | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const num = (s: string | undefined): number | undefined => {
    if (s === undefined || s === "*") return undefined;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  return { start: num(m[1]), end: num(m[2]), total: num(m[3]) };
}

/** Bounded exponential backoff with full jitter: attempt 1 waits up to `base`, then 2x, 4x ... capped at `max`. */
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
  /** The fetch implementation. Default: the global `fetch`. */
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
  /** Cache key. Default: the URL without presigning parameters. */
  key?: string;
}

/** Statistics of one HttpSource (requests include retries). */
export interface HttpSourceStats {
  requests: number;
  bytes: number;
  retries: number;
}

class RetryableError extends Error {}

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
  readonly stats: HttpSourceStats = { requests: 0, bytes: 0, retries: 0 };
  private readonly headers: Record<string, string>;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private knownSize: number | undefined;
  /** The validator learned at the last `readTail`: an ETag, or `lm:<Last-Modified>`. */
  private current: string | undefined;

  constructor(url: string, opts: HttpSourceOptions = {}) {
    if (typeof url !== "string" || url.length === 0) throw new DesInvalidArgumentError("HttpSource needs a URL");
    this.url = url;
    this.key = opts.key ?? stableKey(url);
    this.hints = { ...REMOTE_HINTS, ...opts.hints };
    this.headers = { ...opts.headers };
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new DesInvalidArgumentError("no fetch implementation available");
    this.fetchFn = f;
    this.retries = opts.retries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 2000;
    if (!Number.isSafeInteger(this.retries) || this.retries < 0) throw new DesInvalidArgumentError("retries must be a non-negative integer");
  }

  get size(): number | undefined {
    return this.knownSize;
  }

  /** The version token (ETag or `lm:<Last-Modified>`) learned at the last open. */
  get version(): string | undefined {
    return this.current;
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    if (!Number.isSafeInteger(length) || length <= 0) throw new DesInvalidArgumentError(`invalid tail length ${length}`);
    return this.withRetries(signal, async () => {
      const res = await this.request(`bytes=-${length}`, undefined, signal);
      const version = validatorOf(res);
      if (res.status === 416) {
        // Only an empty object cannot satisfy a suffix range.
        const cr = parseContentRange(res.headers.get("content-range"));
        await res.body?.cancel().catch(() => undefined);
        if (cr?.total === 0 || cr === undefined) return this.learn(new Uint8Array(0), 0, version);
        throw new DesIoError(`${this.key}: the server refused the suffix range (416)`);
      }
      if (res.status === 200) {
        // The server ignored Range and sent the whole object.
        const all = await readBody(res, undefined, signal);
        this.stats.bytes += all.length;
        const n = Math.min(length, all.length);
        return this.learn(all.subarray(all.length - n), all.length, version);
      }
      if (res.status !== 206) throw await statusError(res, this.key);
      const cr = parseContentRange(res.headers.get("content-range"));
      if (!cr || cr.start === undefined || cr.end === undefined || cr.total === undefined || cr.end >= cr.total || cr.end < cr.start) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesIoError(`${this.key}: unusable Content-Range ${JSON.stringify(res.headers.get("content-range"))}`);
      }
      const bytes = await readBody(res, cr.end - cr.start + 1, signal);
      this.stats.bytes += bytes.length;
      return this.learn(bytes, cr.total, version);
    });
  }

  private learn(bytes: Uint8Array, size: number, version: string | undefined): { bytes: Uint8Array; size: number; version?: string } {
    this.knownSize = size;
    this.current = version;
    return version === undefined ? { bytes, size } : { bytes, size, version };
  }

  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.knownSize, this.key);
    if (length === 0) return new Uint8Array(0);
    const expect = version ?? this.current;
    return this.withRetries(signal, async () => {
      const res = await this.request(`bytes=${offset}-${offset + length - 1}`, expect, signal);
      if (res.status === 412) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesChangedError(`${this.key} changed (If-Match ${expect} failed)`);
      }
      const got = validatorOf(res);
      if (expect !== undefined && got !== undefined && got !== expect) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesChangedError(`${this.key} changed (${expect} -> ${got})`);
      }
      if (res.status === 200) {
        const all = await readBody(res, undefined, signal);
        this.stats.bytes += all.length;
        if (this.knownSize !== undefined && all.length !== this.knownSize) throw new DesChangedError(`${this.key} changed size (${this.knownSize} -> ${all.length})`);
        if (offset + length > all.length) throw new DesFormatError(`range ${offset}+${length} is past the end of ${this.key}`);
        return all.slice(offset, offset + length);
      }
      if (res.status === 416) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesChangedError(`${this.key} no longer holds bytes ${offset}+${length} (416)`);
      }
      if (res.status !== 206) throw await statusError(res, this.key);
      const cr = parseContentRange(res.headers.get("content-range"));
      if (cr?.total !== undefined && this.knownSize !== undefined && cr.total !== this.knownSize) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesChangedError(`${this.key} changed size (${this.knownSize} -> ${cr.total})`);
      }
      if (!cr || cr.start !== offset || cr.end !== offset + length - 1) {
        await res.body?.cancel().catch(() => undefined);
        throw new DesIoError(`${this.key}: asked for bytes ${offset}-${offset + length - 1}, got ${JSON.stringify(res.headers.get("content-range"))}`);
      }
      const bytes = await readBody(res, length, signal);
      this.stats.bytes += bytes.length;
      return bytes;
    });
  }

  private async request(range: string, ifMatch: string | undefined, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, range, "accept-encoding": "identity" };
    // If-Match needs a strong ETag; weak ETags and Last-Modified are only compared on the response.
    if (ifMatch !== undefined && ifMatch.startsWith('"')) headers["if-match"] = ifMatch;
    this.stats.requests++;
    let res: Response;
    try {
      res = await this.fetchFn(this.url, { method: "GET", headers, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
      throw new RetryableError(`request to ${this.key} failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status >= 500 || res.status === 429) {
      await res.body?.cancel().catch(() => undefined);
      throw new RetryableError(`${this.key}: HTTP ${res.status}`);
    }
    return res;
  }

  private async withRetries<T>(signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      throwIfAborted(signal);
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        if (i >= this.retries) throw new DesIoError(`${e.message} (after ${i + 1} attempts)`, { cause: e.cause ?? e });
        this.stats.retries++;
        await sleep(backoffDelay(i + 1, this.retryBaseMs, this.retryMaxMs), signal);
      }
    }
  }
}

function validatorOf(res: Response): string | undefined {
  const etag = res.headers.get("etag");
  if (etag) return etag;
  const lm = res.headers.get("last-modified");
  return lm ? `lm:${lm}` : undefined;
}

async function statusError(res: Response, key: string): Promise<DesIoError> {
  let detail = "";
  try {
    detail = (await res.text()).slice(0, 200);
  } catch {
    // the body is only for the message
  }
  return new DesIoError(`${key}: HTTP ${res.status}${detail ? ` ${detail}` : ""}`);
}

/**
 * Reads a response body. With `expected`, exactly that many bytes: fewer is a
 * retryable short read, more is an error. A body that fails midway is
 * retryable too.
 */
async function readBody(res: Response, expected: number | undefined, signal?: AbortSignal): Promise<Uint8Array> {
  const body = res.body;
  if (!body) {
    if (expected === undefined || expected === 0) return new Uint8Array(0);
    throw new RetryableError(`empty body, expected ${expected} bytes`);
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let got = 0;
  const out = expected !== undefined ? new Uint8Array(expected) : undefined;
  try {
    for (;;) {
      let step: { done: boolean; value?: Uint8Array };
      try {
        step = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
        throw new RetryableError(`the response body failed after ${got} bytes: ${(e as Error).message}`, { cause: e });
      }
      if (step.done) break;
      const c = step.value!;
      if (out) {
        if (got + c.length > out.length) throw new DesIoError(`the response body is longer than the ${expected} bytes asked for`);
        out.set(c, got);
      } else {
        chunks.push(c);
      }
      got += c.length;
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
  reader.releaseLock();
  if (out) {
    if (got !== out.length) throw new RetryableError(`short body: ${got} of ${out.length} bytes`);
    return out;
  }
  return concatBytes(chunks);
}
