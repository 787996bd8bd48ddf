import fs from "node:fs";
import { once } from "node:events";
import { PassThrough } from "node:stream";
import { AbortMultipartUploadCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import type { CompleteMultipartUploadCommandOutput, S3Client } from "@aws-sdk/client-s3";
import type { Upload } from "@aws-sdk/lib-storage";
import { DesAbortedError, DesError, DesExistsError, DesInvalidArgumentError, DesIoError } from "../errors.js";
import { DesReader } from "../read/reader.js";
import type { ByteSink } from "../io/sink.js";
import { DesWriter } from "../write/writer.js";
import type { WriterOptions } from "../write/writer.js";
import { describeS3Error, isNotFound, isPreconditionFailed, s3Status } from "./errors.js";
import { S3ExternalStore } from "./external.js";
import { S3Source } from "./source.js";
import { loadUpload } from "./lib-storage.js";

const MIB = 1 << 20;
/** S3's smallest part (except the last). */
const MIN_PART = 5 * MIB;
const MAX_PART = 5 * 1024 * MIB;
const STAGE = MIB;

/** Where an archive goes on S3 and how it is uploaded. */
export interface S3WriteTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /**
   * Replace an existing object. Default false: the upload is conditional
   * (`If-None-Match: *` on the PutObject or CompleteMultipartUpload), so an
   * existing key is never overwritten, and the key is checked with a HEAD up
   * front so a doomed upload fails before sending any data.
   */
  readonly overwrite?: boolean;
  /** Multipart part size. Default 8 MiB; 5 MiB..5 GiB. At most 10,000 parts, so 8 MiB parts cap an archive at ~78 GiB. */
  readonly partSize?: number;
  /** Parts in flight. Default 2. Memory stays under about (queueSize + 2) x partSize. */
  readonly queueSize?: number;
  /** Open the new object (one GET of its tail) and check footer and size. Default true. */
  readonly verify?: boolean;
  readonly contentType?: string;
}

/** What the upload produced. */
export interface S3UploadResult {
  readonly location: string;
  readonly bucket: string;
  readonly key: string;
  readonly size: number;
  readonly etag: string | undefined;
  readonly versionId: string | undefined;
}

function checkTarget(t: S3WriteTarget): { partSize: number; queueSize: number } {
  if (!t?.client) throw new DesInvalidArgumentError("an S3Client is required");
  if (typeof t.bucket !== "string" || t.bucket.length === 0) throw new DesInvalidArgumentError("a bucket is required");
  if (typeof t.key !== "string" || t.key.length === 0) throw new DesInvalidArgumentError("a key is required");
  const partSize = t.partSize ?? 8 * MIB;
  const queueSize = t.queueSize ?? 2;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART || partSize > MAX_PART)
    throw new DesInvalidArgumentError(`partSize must be ${MIN_PART}..${MAX_PART} bytes`);
  if (!Number.isSafeInteger(queueSize) || queueSize < 1 || queueSize > 16)
    throw new DesInvalidArgumentError("queueSize must be 1..16");
  return { partSize, queueSize };
}

/** Fails fast when the key exists (the conditional write is the real guarantee; this only saves a doomed upload). */
async function refuseExisting(t: S3WriteTarget): Promise<void> {
  if (t.overwrite) return;
  try {
    await t.client.send(new HeadObjectCommand({ Bucket: t.bucket, Key: t.key }));
  } catch (e) {
    // 404: free. 403 (no s3:ListBucket) hides existence: leave it to If-None-Match.
    if (isNotFound(e) || s3Status(e).status === 403) return;
    throw new DesIoError(`cannot check s3://${t.bucket}/${t.key}: ${describeS3Error(e)}`, { cause: e });
  }
  throw new DesExistsError(`s3://${t.bucket}/${t.key} exists (pass overwrite: true to replace it)`);
}

function uploadError(e: unknown, location: string): DesError {
  if (e instanceof DesError) return e;
  if (isPreconditionFailed(e))
    return new DesExistsError(`${location} appeared while uploading; not replaced (write-once)`, { cause: e });
  if (s3Status(e).code === "ConditionalRequestConflict") {
    return new DesIoError(
      `${location}: a concurrent write to the same key conflicted (409); nothing was written by this upload`,
      { cause: e },
    );
  }
  return new DesIoError(`upload to ${location} failed: ${describeS3Error(e)}`, { cause: e });
}

/** Opens the uploaded object (one GET, pinned to the upload's ETag) and checks it is the archive we sent. */
async function verifyUploaded(t: S3WriteTarget, result: S3UploadResult): Promise<void> {
  const source = new S3Source(
    { client: t.client, bucket: t.bucket, key: t.key, ...(result.versionId ? { versionId: result.versionId } : {}) },
    result.etag ? { ifMatch: result.etag } : {},
  );
  let reader: DesReader | undefined;
  try {
    reader = await DesReader.open(source);
    if (reader.size !== result.size) throw new DesIoError(`has ${reader.size} bytes, ${result.size} were written`);
  } catch (e) {
    throw new DesIoError(
      `${result.location} was uploaded but does not open as the archive written: ${(e as Error).message}`,
      { cause: e },
    );
  } finally {
    await reader?.close();
  }
}

/**
 * A ByteSink that streams into an S3 multipart upload (lib-storage `Upload`):
 * no local file, memory bounded by the part size and queue (small writes
 * are staged into 1 MiB chunks; `write` waits while parts are uploading).
 * Archives under one part go up as a single PutObject. `commit` completes
 * the upload conditionally and verifies the result; `abort` aborts the
 * multipart upload, leaving neither an object nor a dangling upload.
 */
export class S3Sink implements ByteSink {
  readonly location: string;
  private readonly target: S3WriteTarget;
  private readonly body: PassThrough;
  private readonly upload: Upload;
  private readonly finished: Promise<CompleteMultipartUploadCommandOutput>;
  private failure: unknown;
  private stage: Uint8Array;
  private staged = 0;
  private written = 0;
  private state: "open" | "committing" | "committed" | "aborted" = "open";
  /** Set after commit. */
  result: S3UploadResult | undefined;

  private constructor(target: S3WriteTarget, partSize: number, queueSize: number, UploadClass: typeof Upload) {
    this.target = target;
    this.location = `s3://${target.bucket}/${target.key}`;
    this.stage = new Uint8Array(STAGE);
    this.body = new PassThrough({ highWaterMark: STAGE });
    this.upload = new UploadClass({
      client: target.client,
      params: {
        Bucket: target.bucket,
        Key: target.key,
        Body: this.body,
        ...(target.overwrite ? {} : { IfNoneMatch: "*" }),
        ...(target.contentType ? { ContentType: target.contentType } : {}),
      },
      partSize,
      queueSize,
      leavePartsOnError: false,
    });
    this.finished = this.upload.done();
    this.finished.catch((e: unknown) => {
      this.failure ??= e;
    });
  }

  /** Starts an upload to `target` (refusing an existing key unless `overwrite`). */
  static async create(target: S3WriteTarget): Promise<S3Sink> {
    const { partSize, queueSize } = checkTarget(target);
    const UploadClass = await loadUpload();
    await refuseExisting(target);
    return new S3Sink(target, partSize, queueSize, UploadClass);
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.written;
  }

  private checkOpen(): void {
    if (this.state !== "open") throw new DesIoError(`${this.location}: the sink is ${this.state}`);
    if (this.failure !== undefined) throw uploadError(this.failure, this.location);
  }

  /** Hands a full buffer to the upload; waits while the upload is behind (back-pressure), or fails with it. */
  private async push(buf: Uint8Array): Promise<void> {
    if (this.body.write(buf)) return;
    const failed = this.finished.then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([once(this.body, "drain").catch(() => undefined), failed]);
    if (this.failure !== undefined) throw uploadError(this.failure, this.location);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.checkOpen();
    this.written += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, STAGE - this.staged);
      this.stage.set(chunk.subarray(at, at + n), this.staged);
      this.staged += n;
      at += n;
      if (this.staged === STAGE) {
        // Upload keeps references to what it is given: hand over this buffer, start a fresh one.
        const full = this.stage;
        this.stage = new Uint8Array(STAGE);
        this.staged = 0;
        await this.push(full);
      }
    }
  }

  async commit(): Promise<void> {
    this.checkOpen();
    this.state = "committing";
    try {
      if (this.staged > 0) await this.push(this.stage.subarray(0, this.staged));
      this.stage = new Uint8Array(0);
      this.body.end();
      let out: CompleteMultipartUploadCommandOutput;
      try {
        out = await this.finished;
      } catch (e) {
        throw uploadError(e, this.location);
      }
      this.result = {
        location: this.location,
        bucket: this.target.bucket,
        key: this.target.key,
        size: this.written,
        etag: out.ETag,
        versionId: out.VersionId,
      };
      this.state = "committed";
    } catch (e) {
      // Upload has already aborted its multipart upload; make sure of it.
      this.state = "aborted";
      await this.cleanup();
      throw e;
    }
    if (this.target.verify ?? true) await verifyUploaded(this.target, this.result);
  }

  /** Discards the upload: no object appears and no multipart upload is left behind. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.state === "committed" || this.state === "aborted") return;
    this.state = "aborted";
    this.stage = new Uint8Array(0);
    // An error on the body makes every Upload worker stop; Upload then sends
    // AbortMultipartUpload before done() settles, so awaiting it is enough...
    this.body.destroy(new DesAbortedError("the archive was aborted"));
    await this.finished.catch(() => undefined);
    // ...and we abort once more ourselves, in case it could not.
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    const uploadId = this.upload.uploadId;
    if (!uploadId) return;
    try {
      await this.target.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key, UploadId: uploadId }),
      );
    } catch {
      // Already aborted (NoSuchUpload) or unreachable; a bucket lifecycle rule is the last resort.
    }
  }
}

/**
 * A DesWriter that streams straight into S3 (no local copy). `close()`
 * completes the upload write-once and opens the new object to verify it.
 * Entries above `bigFileThreshold` go to `<dirname(key)>/_bigFiles/<name>` in
 * the same bucket unless another `externalStore` / `externalPrefix` is given.
 */
export async function createS3Writer(target: S3WriteTarget, writerOptions: WriterOptions = {}): Promise<DesWriter> {
  const overwrite = target.overwrite ?? writerOptions.overwrite ?? false;
  const sink = await S3Sink.create({ ...target, overwrite });
  const dir = target.key.includes("/") ? target.key.slice(0, target.key.lastIndexOf("/")) : undefined;
  const opts: WriterOptions = {
    ...writerOptions,
    externalStore:
      writerOptions.externalStore ?? new S3ExternalStore({ client: target.client, bucket: target.bucket, overwrite }),
  };
  if (opts.externalPrefix === undefined && dir !== undefined) opts.externalPrefix = dir;
  return DesWriter.create(sink, opts);
}

/**
 * Uploads a finished local archive (checked locally first), write-once by
 * default, then verifies the object with a one-GET open.
 */
export async function uploadArchive(path: string, target: S3WriteTarget): Promise<S3UploadResult> {
  const { partSize, queueSize } = checkTarget(target);
  const local = await DesReader.open(path);
  const size = local.size;
  await local.close();
  await refuseExisting(target);
  const location = `s3://${target.bucket}/${target.key}`;
  const UploadClass = await loadUpload();
  const body = fs.createReadStream(path, { highWaterMark: MIB });
  const upload = new UploadClass({
    client: target.client,
    params: {
      Bucket: target.bucket,
      Key: target.key,
      Body: body,
      ContentLength: size,
      ...(target.overwrite ? {} : { IfNoneMatch: "*" }),
      ...(target.contentType ? { ContentType: target.contentType } : {}),
    },
    partSize,
    queueSize,
    leavePartsOnError: false,
  });
  let out: CompleteMultipartUploadCommandOutput;
  try {
    out = await upload.done();
  } catch (e) {
    throw uploadError(e, location);
  } finally {
    body.destroy();
  }
  const result: S3UploadResult = {
    location,
    bucket: target.bucket,
    key: target.key,
    size,
    etag: out.ETag,
    versionId: out.VersionId,
  };
  if (target.verify ?? true) await verifyUploaded(target, result);
  return result;
}
