import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { GetObjectCommandInput, GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { DesChangedError, DesInvalidArgumentError, DesIoError, throwIfAborted } from "../errors.js";
import { REMOTE_HINTS, backoffDelay, parseContentRange, sleep } from "../sources/http.js";
import { checkRange } from "../io/source.js";
import type { RangeSource, ReadHints } from "../io/source.js";
import { BodyError, discardBody, readBody } from "./body.js";
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
   * Extra GETs after a body that ended short or broke midway (the SDK only
   * retries failures that happen before the response arrives). Default 2.
   * Statuses (500, 503 SlowDown, throttling) and connection errors before
   * the response are left to the client's own retry strategy, so one range
   * costs at most `(1 + bodyRetries) x client maxAttempts` requests.
   */
  bodyRetries?: number;
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
  private readonly bodyRetries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly pinned: string | undefined;
  private knownSize: number | undefined;
  private currentEtag: string | undefined;

  constructor(ref: S3ObjectRef, opts: S3SourceOptions = {}) {
    if (!ref || !ref.client) throw new DesInvalidArgumentError("S3Source needs an S3Client");
    if (typeof ref.bucket !== "string" || ref.bucket.length === 0) throw new DesInvalidArgumentError("S3Source needs a bucket");
    if (typeof ref.key !== "string" || ref.key.length === 0) throw new DesInvalidArgumentError("S3Source needs a key");
    this.client = ref.client;
    this.bucket = ref.bucket;
    this.objectKey = ref.key;
    this.versionId = ref.versionId;
    this.key = `s3://${ref.bucket}/${ref.key}${ref.versionId ? `?versionId=${encodeURIComponent(ref.versionId)}` : ""}`;
    this.hints = { ...S3_HINTS, ...opts.hints };
    this.bodyRetries = opts.bodyRetries ?? 2;
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 2000;
    if (!Number.isSafeInteger(this.bodyRetries) || this.bodyRetries < 0) throw new DesInvalidArgumentError("bodyRetries must be a non-negative integer");
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
    if (!Number.isSafeInteger(length) || length <= 0) throw new DesInvalidArgumentError(`invalid tail length ${length}`);
    // Unpinned (unless the caller pinned an ETag): a reopen must learn the new ETag.
    const got = await this.fetch(`bytes=-${length}`, this.pinned, signal, (out) => {
      const cr = parseContentRange(out.ContentRange);
      if (cr === undefined) return { expected: undefined, total: undefined }; // 200: the whole object
      if (cr.start === undefined || cr.end === undefined || cr.total === undefined || cr.end < cr.start || cr.end >= cr.total) {
        throw new DesIoError(`${this.key}: unusable Content-Range ${JSON.stringify(out.ContentRange)}`);
      }
      return { expected: cr.end - cr.start + 1, total: cr.total };
    });
    if (got === "empty") return this.learn(new Uint8Array(0), 0, this.pinned);
    const { bytes, total, etag } = got;
    if (this.pinned !== undefined && etag !== undefined && etag !== this.pinned) throw new DesChangedError(`${this.key} is no longer ${this.pinned} (now ${etag})`);
    if (total === undefined) {
      const n = Math.min(length, bytes.length);
      return this.learn(bytes.subarray(bytes.length - n), bytes.length, etag);
    }
    return this.learn(bytes, total, etag);
  }

  private learn(bytes: Uint8Array, size: number, etag: string | undefined): { bytes: Uint8Array; size: number; version?: string } {
    this.knownSize = size;
    this.currentEtag = etag;
    return etag === undefined ? { bytes, size } : { bytes, size, version: etag };
  }

  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(offset, length, this.knownSize, this.key);
    if (length === 0) return new Uint8Array(0);
    const expect = version ?? this.currentEtag;
    const size = this.knownSize;
    const got = await this.fetch(`bytes=${offset}-${offset + length - 1}`, expect, signal, (out) => {
      if (expect !== undefined && out.ETag !== undefined && out.ETag !== expect) {
        throw new DesChangedError(`${this.key} changed (${expect} -> ${out.ETag})`);
      }
      const cr = parseContentRange(out.ContentRange);
      if (cr === undefined) return { expected: undefined, total: undefined }; // 200: the server ignored Range
      if (cr.total !== undefined && size !== undefined && cr.total !== size) throw new DesChangedError(`${this.key} changed size (${size} -> ${cr.total})`);
      if (cr.start !== offset || cr.end !== offset + length - 1) {
        throw new DesIoError(`${this.key}: asked for bytes ${offset}-${offset + length - 1}, got ${JSON.stringify(out.ContentRange)}`);
      }
      return { expected: length, total: cr.total };
    });
    if (got === "empty") throw new DesChangedError(`${this.key} no longer holds bytes ${offset}+${length}`);
    if (got.total === undefined) {
      // A whole-object answer: usable only if it is still the object we opened.
      if (size !== undefined && got.bytes.length !== size) throw new DesChangedError(`${this.key} changed size (${size} -> ${got.bytes.length})`);
      return got.bytes.slice(offset, offset + length);
    }
    return got.bytes;
  }

  /**
   * One logical GET: the SDK's own retries cover statuses and connection
   * errors; we add up to `bodyRetries` more GETs for bodies that come back
   * short or break midway. `plan` checks the headers and says how many body
   * bytes to expect (undefined: the whole body).
   */
  private async fetch(
    range: string,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
    plan: (out: GetObjectCommandOutput) => { expected: number | undefined; total: number | undefined },
  ): Promise<{ bytes: Uint8Array; total: number | undefined; etag: string | undefined } | "empty"> {
    const input: GetObjectCommandInput = { Bucket: this.bucket, Key: this.objectKey, Range: range };
    if (ifMatch !== undefined) input.IfMatch = ifMatch;
    if (this.versionId !== undefined) input.VersionId = this.versionId;
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      this.stats.requests++;
      let out: GetObjectCommandOutput;
      try {
        out = await this.client.send(new GetObjectCommand(input), signal ? { abortSignal: signal } : {});
      } catch (e) {
        // 416 on a suffix range: the object is empty. On a pinned read: it shrank.
        if (isInvalidRange(e)) return "empty";
        throw mapGetError(e, this.key, signal);
      }
      let expected: number | undefined;
      let total: number | undefined;
      try {
        ({ expected, total } = plan(out));
      } catch (e) {
        discardBody(out.Body);
        throw e;
      }
      try {
        const bytes = await readBody(out.Body, expected, signal);
        this.stats.bytes += bytes.length;
        return { bytes, total, etag: out.ETag };
      } catch (e) {
        if (!(e instanceof BodyError)) throw e;
        if (attempt >= this.bodyRetries) {
          throw new DesIoError(`GET ${this.key} ${range}: ${e.message} (gave up after ${attempt + 1} GETs)`, { cause: e });
        }
        this.stats.retries++;
        await sleep(backoffDelay(attempt + 1, this.retryBaseMs, this.retryMaxMs), signal);
      }
    }
  }
}
