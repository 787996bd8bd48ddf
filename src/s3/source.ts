import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { GetObjectCommandInput, GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { REMOTE_HINTS } from "../sources/http.js";
import { checkRange } from "../io/source.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import { collectBody, describeAsk, planRangeBody } from "../io/range-response.js";
import type { BodyPlan, RangeAsk, RangeExpect } from "../io/range-response.js";
import { retryPolicy, withRetries } from "../io/retry.js";
import type { RetryPolicy } from "../io/retry.js";
import { Attempt, timeouts } from "../io/timeout.js";
import type { Timeouts } from "../io/timeout.js";
import { bodyChunks, destroyOnAbort, discardBody } from "./body.js";
import { isInvalidRange, mapGetError } from "./errors.js";

/** One S3 object. With `versionId`, every read is of that version. */
export interface S3ObjectRef {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
}

/** S3 batching: 1 MiB merge gap, 8 MiB merged reads, 8 GETs in flight. */
export const S3_HINTS: ReadHints = REMOTE_HINTS;

export interface S3SourceOptions {
  /** Overrides of the coalescing defaults (S3_HINTS). */
  hints?: Partial<ReadHints>;
  /**
   * Extra GETs after a body that ended short or broke midway, or a request
   * that timed out (the SDK retries only failures it sees before the
   * response arrives, and none of our timeouts). Default 2.
   * Statuses (500, 503 SlowDown, throttling) and connection errors before
   * the response are left to the client's own retry strategy, so one range
   * costs at most `(1 + bodyRetries) x client maxAttempts` requests.
   */
  bodyRetries?: number;
  /**
   * Longest wait from sending a GET to its response headers, ms (connecting
   * included). Default 30,000. Applies whatever the client's own request
   * handler is configured with; a timeout is retried (`bodyRetries`), then
   * DES_IO.
   */
  responseTimeoutMs?: number;
  /** Longest pause between two chunks of a body, ms. Default 30,000; retried too. */
  bodyTimeoutMs?: number;
  /** Fail with DES_IO when an S3-compatible server ignores `Range`. Default false: only the bytes up to the end of the range are read. */
  requireRanges?: boolean;
  /** First backoff step of our body retries, ms (doubling, jittered). Default 100. */
  retryBaseMs?: number;
  /** Largest backoff step, ms. Default 2000. */
  retryMaxMs?: number;
  /**
   * Pin to this ETag from the very first request, the open included; the
   * source then never follows a replaced object (a change is always a
   * DesChangedError). Default: learn the ETag at open, follow on reopen.
   */
  ifMatch?: string;
}

/** What one S3Source asked of S3 (retries included; the SDK's internal retries are not visible here). */
export interface S3SourceStats {
  requests: number;
  bytes: number;
  retries: number;
}

/**
 * A RangeSource over one S3 object. Opening is ONE suffix-range GET
 * (`Range: bytes=-N`, no HEAD): the size comes from `Content-Range` and the
 * ETag is kept. Every later GET carries `If-Match` with the ETag of the
 * opening it serves (and `VersionId` when given), so a replaced object makes
 * S3 answer 412, which becomes DesChangedError; the reader then reopens once.
 */
export class S3Source implements RangeSource {
  readonly client: S3Client;
  readonly bucket: string;
  readonly objectKey: string;
  readonly versionId: string | undefined;
  readonly key: string;
  readonly hints: ReadHints;
  readonly stats: S3SourceStats = { requests: 0, bytes: 0, retries: 0 };
  private readonly policy: RetryPolicy;
  private readonly limits: Timeouts;
  private readonly requireRanges: boolean;
  private readonly pinned: string | undefined;
  private knownSize: number | undefined;
  private currentEtag: string | undefined;

  constructor(ref: S3ObjectRef, opts: S3SourceOptions = {}) {
    if (!ref || !ref.client) throw new DesInvalidArgumentError("S3Source needs an S3Client");
    if (typeof ref.bucket !== "string" || ref.bucket.length === 0)
      throw new DesInvalidArgumentError("S3Source needs a bucket");
    if (typeof ref.key !== "string" || ref.key.length === 0) throw new DesInvalidArgumentError("S3Source needs a key");
    this.client = ref.client;
    this.bucket = ref.bucket;
    this.objectKey = ref.key;
    this.versionId = ref.versionId;
    this.key = `s3://${ref.bucket}/${ref.key}${ref.versionId ? `?versionId=${encodeURIComponent(ref.versionId)}` : ""}`;
    this.hints = { ...S3_HINTS, ...opts.hints };
    this.policy = retryPolicy(opts.bodyRetries, opts.retryBaseMs, opts.retryMaxMs, 2);
    this.limits = timeouts(opts);
    this.requireRanges = opts.requireRanges ?? false;
    this.pinned = opts.ifMatch;
    this.currentEtag = opts.ifMatch;
  }

  get size(): number | undefined {
    return this.knownSize;
  }

  /** The ETag learned at the last open (or the pinned one). */
  get etag(): string | undefined {
    return this.currentEtag;
  }

  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    if (!Number.isSafeInteger(length) || length <= 0)
      throw new DesInvalidArgumentError(`invalid tail length ${length}`);
    // Unpinned (unless the caller pinned an ETag): a reopen must learn the new ETag.
    const got = await this.fetch(
      { tail: length },
      this.pinned,
      { version: this.pinned, requireRanges: this.requireRanges },
      signal,
    );
    const size = got.total ?? got.bytes.length;
    const etag = got.etag ?? this.pinned;
    this.knownSize = size;
    this.currentEtag = etag;
    return etag === undefined ? { bytes: got.bytes, size } : { bytes: got.bytes, size, version: etag };
  }

  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.knownSize, this.key);
    if (length === 0) return new Uint8Array(0);
    const expect = version ?? this.currentEtag;
    const got = await this.fetch(
      { offset, length },
      expect,
      { size: this.knownSize, version: expect, requireRanges: this.requireRanges },
      signal,
    );
    return got.bytes;
  }

  /**
   * One logical GET: the SDK's own retries cover statuses and connection
   * errors; we add up to `bodyRetries` more GETs for bodies that come back
   * short or break midway and for timeouts. The answer is checked by the
   * shared range-response check, and only the bytes asked for are read.
   */
  private fetch(
    ask: RangeAsk,
    ifMatch: string | undefined,
    expect: RangeExpect,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; total: number | undefined; etag: string | undefined }> {
    const range = describeAsk(ask);
    const input: GetObjectCommandInput = { Bucket: this.bucket, Key: this.objectKey, Range: range };
    if (ifMatch !== undefined) input.IfMatch = ifMatch;
    if (this.versionId !== undefined) input.VersionId = this.versionId;
    return withRetries(
      this.policy,
      signal,
      async () => {
        const attempt = new Attempt(signal, this.limits, `GET ${this.key} ${range}`);
        try {
          this.stats.requests++;
          let out: GetObjectCommandOutput | undefined;
          let plan: BodyPlan;
          try {
            out = await this.client.send(new GetObjectCommand(input), { abortSignal: attempt.signal });
          } catch (e) {
            if (attempt.timedOut) throw attempt.timeoutError();
            // 416 on a suffix range: the object is empty. On a pinned read: it shrank.
            if (!isInvalidRange(e)) throw mapGetError(e, this.key, signal);
          }
          const answer = out
            ? {
                status: out.ContentRange ? 206 : 200,
                contentRange: out.ContentRange,
                contentLength: out.ContentLength,
                version: out.ETag,
              }
            : { status: 416, contentRange: undefined, contentLength: undefined, version: undefined };
          try {
            plan = planRangeBody(ask, answer, expect, this.key);
          } catch (e) {
            discardBody(out?.Body);
            throw e;
          }
          const release = destroyOnAbort(out?.Body, attempt.signal);
          try {
            const body = await collectBody(out ? bodyChunks(out.Body) : undefined, plan, attempt, this.key);
            this.stats.bytes += body.received;
            return { bytes: body.bytes, total: body.total, etag: out?.ETag };
          } finally {
            release();
            discardBody(out?.Body);
          }
        } finally {
          attempt.done();
        }
      },
      (e, attempts) =>
        new DesIoError(`GET ${this.key} ${range}: ${e.message} (gave up after ${attempts} GETs)`, { cause: e }),
      () => this.stats.retries++,
    );
  }
}
