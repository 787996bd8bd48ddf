import { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { GetObjectCommandInput, GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { DesAbortedError, DesChangedError, DesError, DesExistsError, DesExternalError, DesInvalidArgumentError, throwIfAborted } from "../errors.js";
import type { ExternalStore } from "../io/external.js";
import { backoffDelay, sleep } from "../sources/http.js";
import { BodyError, bodyChunks, discardBody } from "./body.js";
import { describeS3Error, isAbort, isNotFound, isPreconditionFailed } from "./errors.js";
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

  constructor(opts: S3ExternalStoreOptions) {
    if (!opts?.client) throw new DesInvalidArgumentError("S3ExternalStore needs an S3Client");
    if (typeof opts.bucket !== "string" || opts.bucket.length === 0) throw new DesInvalidArgumentError("S3ExternalStore needs a bucket");
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.opts = opts;
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    checkKey(key);
    throwIfAborted(signal);
    const UploadClass = await loadUpload();
    const stream = Readable.from(body, { objectMode: false });
    const upload = new UploadClass({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: stream, ...(this.opts.overwrite ? {} : { IfNoneMatch: "*" }) },
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
      if (isPreconditionFailed(e)) throw new DesExistsError(`${this.where(key)} exists (external bodies are write-once unless overwrite: true)`, { cause: e });
      throw new DesExternalError(`cannot store external body ${this.where(key)}: ${describeS3Error(e)}`, { cause: e });
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const c of this.stream(key, signal)) chunks.push(c);
    return concatBytes(chunks);
  }

  /**
   * Streams one object. A body that breaks or ends early is resumed from the
   * next byte with a ranged GET pinned to the first response's ETag (at most
   * `bodyRetries` times), so a replaced object never splices two versions.
   */
  async *stream(key: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    checkKey(key);
    const retries = this.opts.bodyRetries ?? 2;
    let etag: string | undefined;
    let total: number | undefined;
    let got = 0;
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      const input: GetObjectCommandInput = { Bucket: this.bucket, Key: key };
      if (attempt > 0) {
        input.Range = `bytes=${got}-`;
        if (etag !== undefined) input.IfMatch = etag;
      }
      let out: GetObjectCommandOutput;
      try {
        out = await this.client.send(new GetObjectCommand(input), signal ? { abortSignal: signal } : {});
      } catch (e) {
        if (isAbort(e, signal)) throw new DesAbortedError(undefined, { cause: signal?.reason ?? e });
        if (isPreconditionFailed(e)) throw new DesChangedError(`external body ${this.where(key)} changed while being read`, { cause: e });
        if (isNotFound(e)) throw new DesExternalError(`external body ${this.where(key)} does not exist`, { cause: e });
        throw new DesExternalError(`external body ${this.where(key)} is not readable: ${describeS3Error(e)}`, { cause: e });
      }
      if (attempt === 0) {
        etag = out.ETag;
        total = out.ContentLength;
      } else if (etag !== undefined && out.ETag !== undefined && out.ETag !== etag) {
        discardBody(out.Body);
        throw new DesChangedError(`external body ${this.where(key)} changed while being read`);
      }
      const onAbort = (): void => (out.Body as { destroy?: (e?: Error) => void } | undefined)?.destroy?.(new DesAbortedError());
      signal?.addEventListener("abort", onAbort, { once: true });
      let broke: unknown;
      try {
        for await (const c of bodyChunks(out.Body)) {
          got += c.length;
          if (total !== undefined && got > total) throw new DesExternalError(`external body ${this.where(key)} is longer than its ${total} bytes`);
          yield c;
        }
      } catch (e) {
        if (e instanceof DesError) throw e;
        if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
        broke = new BodyError(`external body ${this.where(key)} broke after ${got} bytes: ${(e as Error).message}`, { cause: e });
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
      if (broke === undefined && (total === undefined || got === total)) return;
      if (broke === undefined) broke = new BodyError(`external body ${this.where(key)} ended after ${got} of ${total} bytes`);
      if (attempt >= retries) throw new DesExternalError(`${(broke as Error).message} (gave up after ${attempt + 1} GETs)`, { cause: broke });
      await sleep(backoffDelay(attempt + 1, this.opts.retryBaseMs ?? 100, this.opts.retryMaxMs ?? 2000), signal);
    }
  }
}

function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > 1024) throw new DesInvalidArgumentError(`invalid S3 key ${JSON.stringify(key)}`);
}
