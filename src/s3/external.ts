import { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { GetObjectCommandInput, GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import {
  DesAbortedError,
  DesChangedError,
  DesError,
  DesExistsError,
  DesExternalError,
  DesInvalidArgumentError,
  throwIfAborted,
} from "../errors.js";
import { maxBytesOf } from "../io/external.js";
import type { ExternalGetOptions, ExternalStore } from "../io/external.js";
import { parseContentRange } from "../io/range-response.js";
import { TransientError, pauseBeforeRetry, retryPolicy } from "../io/retry.js";
import type { RetryPolicy } from "../io/retry.js";
import { Attempt, timeouts } from "../io/timeout.js";
import type { Timeouts } from "../io/timeout.js";
import { bodyChunks, destroyOnAbort, discardBody } from "./body.js";
import { describeS3Error, isAbort, isInvalidRange, isNotFound, isPreconditionFailed } from "./errors.js";
import { concatBytes } from "../format/bytes.js";
import { loadUpload } from "./lib-storage.js";

export interface S3ExternalStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /**
   * Replace an existing object under the same key. Default false: bodies are
   * written with `If-None-Match: *`, like archives, so another archive's
   * external body is never replaced (DesExistsError instead).
   */
  readonly overwrite?: boolean;
  /** Multipart part size for `put`. Default 8 MiB (S3 minimum 5 MiB). */
  readonly partSize?: number;
  /** Parts uploaded at once. Default 2 (memory ~ (queueSize + 1) x partSize). */
  readonly queueSize?: number;
  /** GETs resumed (`Range: bytes=<n>-`, pinned by ETag) after a body breaks midway. Default 2. */
  readonly bodyRetries?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /**
   * Prepended to every key (`<prefix><key>`), so the store's keys can be
   * relative to a folder of the bucket (an S3Location's external store).
   * Default: none, keys are bucket keys.
   */
  readonly prefix?: string;
  /** Longest wait for the response headers of a GET, ms. Default 30,000; a timeout is retried (`bodyRetries`). */
  readonly responseTimeoutMs?: number;
  /** Longest pause between two chunks of a body, ms. Default 30,000. */
  readonly bodyTimeoutMs?: number;
}

/**
 * External ("big") entry bodies as S3 objects of one bucket, keyed exactly
 * by the key the archive records (v2) or resolves (v1: `meta.external_key`,
 * else `<dirname(archive key)>/_bigFiles/<name>`).
 */
export class S3ExternalStore implements ExternalStore {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly opts: S3ExternalStoreOptions;
  private readonly policy: RetryPolicy;
  private readonly limits: Timeouts;

  constructor(opts: S3ExternalStoreOptions) {
    if (!opts?.client) throw new DesInvalidArgumentError("S3ExternalStore needs an S3Client");
    if (typeof opts.bucket !== "string" || opts.bucket.length === 0)
      throw new DesInvalidArgumentError("S3ExternalStore needs a bucket");
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.opts = opts;
    this.policy = retryPolicy(opts.bodyRetries, opts.retryBaseMs, opts.retryMaxMs, 2);
    this.limits = timeouts(opts);
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  private objectKey(key: string): string {
    return (this.opts.prefix ?? "") + key;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    checkKey(key);
    throwIfAborted(signal);
    const UploadClass = await loadUpload();
    const stream = Readable.from(body, { objectMode: false });
    const upload = new UploadClass({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: stream,
        ...(this.opts.overwrite ? {} : { IfNoneMatch: "*" }),
      },
      partSize: this.opts.partSize ?? 8 << 20,
      queueSize: this.opts.queueSize ?? 2,
      leavePartsOnError: false,
    });
    // Aborting destroys the body: Upload then aborts its multipart upload before done() settles.
    const onAbort = (): void => {
      stream.destroy(new DesAbortedError(undefined, { cause: signal?.reason }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await upload.done();
    } catch (e) {
      if (isAbort(e, signal)) throw new DesAbortedError(undefined, { cause: signal?.reason ?? e });
      if (e instanceof DesError) throw e;
      if (isPreconditionFailed(e))
        throw new DesExistsError(`${this.where(key)} exists (external bodies are write-once unless overwrite: true)`, {
          cause: e,
        });
      throw new DesExternalError(`cannot store external body ${this.where(key)}: ${describeS3Error(e)}`, { cause: e });
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async get(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const c of this.stream(key, signal, opts)) chunks.push(c);
    return concatBytes(chunks);
  }

  /**
   * Streams one object. With `maxBytes`, every GET is a Range GET ending at
   * byte `maxBytes` (so at most `maxBytes + 1` bytes come back) and an object
   * whose size (from `Content-Range`) exceeds it fails before its body is
   * read. A body that breaks, ends early or times out is resumed from the
   * next byte with a ranged GET pinned to the first response's ETag (at most
   * `bodyRetries` times), so a replaced object never splices two versions.
   */
  async *stream(key: string, signal?: AbortSignal, opts?: ExternalGetOptions): AsyncIterable<Uint8Array> {
    checkKey(key);
    const max = maxBytesOf(opts);
    let etag: string | undefined;
    let total: number | undefined;
    let got = 0;
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      const input: GetObjectCommandInput = { Bucket: this.bucket, Key: this.objectKey(key) };
      if (attempt > 0 || max !== undefined) input.Range = `bytes=${got}-${max ?? ""}`;
      if (attempt > 0 && etag !== undefined) input.IfMatch = etag;
      const t = new Attempt(signal, this.limits, `GET ${this.where(key)}`);
      let failure: unknown;
      try {
        let out: GetObjectCommandOutput;
        try {
          out = await this.client.send(new GetObjectCommand(input), { abortSignal: t.signal });
        } catch (e) {
          if (t.timedOut) throw t.timeoutError();
          if (isAbort(e, signal)) throw new DesAbortedError(undefined, { cause: signal?.reason ?? e });
          if (isPreconditionFailed(e))
            throw new DesChangedError(`external body ${this.where(key)} changed while being read`, { cause: e });
          if (isNotFound(e))
            throw new DesExternalError(`external body ${this.where(key)} does not exist`, { cause: e });
          // A range starting at 0 of an empty object.
          if (isInvalidRange(e) && got === 0 && attempt === 0) return;
          throw new DesExternalError(`external body ${this.where(key)} is not readable: ${describeS3Error(e)}`, {
            cause: e,
          });
        }
        const size = out.ContentRange !== undefined ? parseContentRange(out.ContentRange)?.total : out.ContentLength;
        if (attempt === 0) {
          etag = out.ETag;
          total = size;
        } else if (etag !== undefined && out.ETag !== undefined && out.ETag !== etag) {
          discardBody(out.Body);
          throw new DesChangedError(`external body ${this.where(key)} changed while being read`);
        }
        if (max !== undefined && total !== undefined && total > max) {
          discardBody(out.Body);
          throw new DesExternalError(
            `external body ${this.where(key)} is ${total} bytes, more than the ${max} expected`,
          );
        }
        const release = destroyOnAbort(out.Body, t.signal);
        t.body();
        try {
          for await (const c of bodyChunks(out.Body)) {
            got += c.length;
            if (total !== undefined && got > total)
              throw new DesExternalError(`external body ${this.where(key)} is longer than its ${total} bytes`);
            if (max !== undefined && got > max)
              throw new DesExternalError(`external body ${this.where(key)} is longer than the ${max} bytes expected`);
            t.pause();
            yield c;
            t.body();
          }
        } catch (e) {
          if (e instanceof DesError) throw e;
          if (t.timedOut) throw t.timeoutError();
          if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
          throw new TransientError(
            `external body ${this.where(key)} broke after ${got} bytes: ${(e as Error).message}`,
            { cause: e },
          );
        } finally {
          release();
        }
        if (total === undefined || got === total) return;
        throw new TransientError(`external body ${this.where(key)} ended after ${got} of ${total} bytes`);
      } catch (e) {
        failure = e;
      } finally {
        t.done();
      }
      await pauseBeforeRetry(
        this.policy,
        attempt,
        failure,
        signal,
        (e, attempts) => new DesExternalError(`${e.message} (gave up after ${attempts} GETs)`, { cause: e }),
      );
    }
  }
}

function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > 1024)
    throw new DesInvalidArgumentError(`invalid S3 key ${JSON.stringify(key)}`);
}
