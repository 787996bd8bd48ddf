/**
 * Append on S3 (spec 3.8.5): generation n+1 goes into a new version of the
 * same object. From 5 MiB up the old bytes are copied inside S3
 * (`UploadPartCopy` with `CopySourceIfMatch`), so only the new bytes cross
 * the wire; smaller archives are read and rewritten. Every write that makes
 * the new version visible is conditional on the old ETag.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import type { CompletedPart, S3Client } from "@aws-sdk/client-s3";
import { concatBytes } from "../format/bytes.js";
import { DesChangedError, DesError, DesInvalidArgumentError, DesIoError, DesUnsupportedError } from "../errors.js";
import { DEFAULT_TAIL_SIZE } from "../format/constants.js";
import { loadHasher } from "../format/hash.js";
import { openGeneration } from "../read/generations.js";
import { DesAppendWriter } from "../write/append.js";
import type { AppendOptions, AppendSink, AppendTarget } from "../write/append.js";
import { describeS3Error, isPreconditionFailed } from "./errors.js";
import { S3Source } from "./source.js";

const MIB = 1 << 20;
/** S3's smallest part other than the last. */
export const MIN_PART = 5 * MIB;
/** S3's largest part (and largest UploadPartCopy range). */
const MAX_PART = 5 * 1024 * MIB;

export interface S3AppendTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** Size of the parts of new bytes. Default 8 MiB (5 MiB..5 GiB). */
  readonly partSize?: number;
}

/** What the last append to S3 did on the wire, for tests and cost estimates. */
export interface S3AppendStats {
  /** Bytes of the old object copied inside S3 (UploadPartCopy). */
  copiedBytes: number;
  /** Bytes sent (UploadPart and PutObject bodies). */
  uploadedBytes: number;
  /** Bytes of the old object downloaded (only below 5 MiB). */
  downloadedBytes: number;
  mode: "copy" | "rewrite" | "none";
}

function changed(location: string, e: unknown): DesChangedError {
  return new DesChangedError(`${location} changed while appending (another writer?): the append was not applied`, {
    cause: e,
  });
}

/**
 * A sink whose first byte lands at `base` of the new object. Parts of new
 * bytes go up as they fill; `commit` completes the upload (or puts the
 * whole object) conditionally on the old ETag.
 */
class S3AppendSink implements AppendSink {
  readonly location: string;
  readonly stats: S3AppendStats = { copiedBytes: 0, uploadedBytes: 0, downloadedBytes: 0, mode: "none" };
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private uploadId: string | undefined;
  private readonly parts: CompletedPart[] = [];
  private done = false;

  constructor(
    private readonly t: S3AppendTarget,
    private readonly etag: string,
    private readonly base: number,
    private readonly partSize: number,
  ) {
    this.location = `s3://${t.bucket}/${t.key}`;
  }

  /** Starts the upload: the old bytes copied inside S3, or (small archives) read into the first part. */
  async begin(): Promise<void> {
    const { client, bucket, key } = this.t;
    if (this.base < MIN_PART) {
      this.stats.mode = "rewrite";
      let body: Uint8Array;
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: this.etag }));
        body = await out.Body!.transformToByteArray();
      } catch (e) {
        if (isPreconditionFailed(e)) throw changed(this.location, e);
        throw new DesIoError(`GET ${this.location} failed: ${describeS3Error(e)}`, { cause: e });
      }
      if (body.length !== this.base) throw changed(this.location, undefined);
      this.stats.downloadedBytes += body.length;
      this.chunks.push(body);
      this.buffered = body.length;
      return;
    }
    this.stats.mode = "copy";
    try {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      this.uploadId = created.UploadId;
      // Copy ranges of at most 5 GiB, all but the last at least 5 MiB (equal split keeps both true).
      const n = Math.ceil(this.base / MAX_PART);
      const step = Math.ceil(this.base / n);
      for (let at = 0; at < this.base; at += step) {
        const end = Math.min(this.base, at + step) - 1;
        const PartNumber = this.parts.length + 1;
        const out = await client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: key,
            UploadId: this.uploadId,
            PartNumber,
            CopySource: `${bucket}/${encodeURIComponent(key)}`,
            CopySourceRange: `bytes=${at}-${end}`,
            CopySourceIfMatch: this.etag,
          }),
        );
        this.parts.push({ PartNumber, ETag: out.CopyPartResult?.ETag });
        this.stats.copiedBytes += end + 1 - at;
      }
    } catch (e) {
      await this.abort();
      if (isPreconditionFailed(e)) throw changed(this.location, e);
      if (e instanceof DesError) throw e;
      throw new DesIoError(`copying ${this.location} into its next version failed: ${describeS3Error(e)}`, {
        cause: e,
      });
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    // The sink may not keep the caller's memory past this call.
    this.chunks.push(new Uint8Array(chunk));
    this.buffered += chunk.length;
    while (this.buffered >= this.partSize) await this.uploadPart(this.partSize);
  }

  private take(n: number): Uint8Array {
    const all = concatBytes(this.chunks);
    this.chunks = n < all.length ? [all.subarray(n)] : [];
    this.buffered = all.length - Math.min(n, all.length);
    return all.subarray(0, n);
  }

  private async uploadPart(n: number): Promise<void> {
    const { client, bucket, key } = this.t;
    try {
      if (this.uploadId === undefined) {
        this.uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId;
      }
      const body = this.take(n);
      const PartNumber = this.parts.length + 1;
      const out = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.uploadId,
          PartNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      this.parts.push({ PartNumber, ETag: out.ETag });
      this.stats.uploadedBytes += body.length;
    } catch (e) {
      throw new DesIoError(`uploading a part of ${this.location} failed: ${describeS3Error(e)}`, { cause: e });
    }
  }

  /**
   * Makes the new version visible, only if the object is still the version
   * this append started from. Stores that ignore `If-Match` on
   * CompleteMultipartUpload (moto, some S3-compatible servers) get a HEAD
   * check first, which narrows the window but cannot close it.
   */
  async commit(): Promise<void> {
    const { client, bucket, key } = this.t;
    try {
      if (this.uploadId === undefined) {
        const body = this.take(this.buffered);
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            IfMatch: this.etag,
          }),
        );
        this.stats.uploadedBytes += body.length;
        this.done = true;
        return;
      }
      if (this.buffered > 0) await this.uploadPart(this.buffered);
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (head.ETag !== this.etag) throw changed(this.location, undefined);
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: this.parts },
          IfMatch: this.etag,
        }),
      );
      this.done = true;
    } catch (e) {
      await this.abort();
      if (e instanceof DesError) throw e;
      if (isPreconditionFailed(e) || (e as { name?: string }).name === "ConditionalRequestConflict")
        throw changed(this.location, e);
      throw new DesIoError(`finishing the append to ${this.location} failed: ${describeS3Error(e)}`, { cause: e });
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.chunks = [];
    const id = this.uploadId;
    this.uploadId = undefined;
    if (id === undefined) return;
    try {
      await this.t.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.t.bucket, Key: this.t.key, UploadId: id }),
      );
    } catch {
      // Nothing became visible; a lifecycle rule cleans up an upload we could not abort.
    }
  }
}

/** The stats of the sinks handed out by `openS3Append`, keyed by the writer they serve. */
const statsOf = new WeakMap<DesAppendWriter, S3AppendStats>();

/** What an S3 append did on the wire (after `close()`). */
export function s3AppendStats(w: DesAppendWriter): S3AppendStats | undefined {
  return statsOf.get(w);
}

/**
 * Opens the object's newest generation for appending (one suffix GET for
 * the tail, then the index pages). `close()` writes the next version.
 */
export async function openS3Append(t: S3AppendTarget, opts: AppendOptions = {}): Promise<DesAppendWriter> {
  if (!t?.client || !t.bucket || !t.key)
    throw new DesInvalidArgumentError("an S3 append target needs client, bucket and key");
  const partSize = t.partSize ?? 8 * MIB;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART || partSize > MAX_PART)
    throw new DesInvalidArgumentError(`partSize must be ${MIN_PART}..${MAX_PART} bytes`);
  await loadHasher();
  const source = new S3Source({ client: t.client, bucket: t.bucket, key: t.key });
  const base = await openGeneration(source, source.hints, {
    tailSize: opts.tailSize ?? DEFAULT_TAIL_SIZE,
    pageCacheBytes: 16 << 20,
  });
  if (base.index.version === 1) {
    throw new DesUnsupportedError(
      `s3://${t.bucket}/${t.key} is a DES v1 archive, which cannot be appended to; convert it first: des-pack repack --format 2 (or repack(source, target, { format: 2 }))`,
    );
  }
  const etag = base.fetcher.pinnedVersion;
  if (etag === undefined)
    throw new DesIoError(`s3://${t.bucket}/${t.key}: no ETag; an append must be conditional on it`);
  const sink = new S3AppendSink(t, etag, base.size, partSize);
  const writer = await DesAppendWriter.begin(sink, base, opts);
  await sink.begin();
  statsOf.set(writer, sink.stats);
  return writer;
}

/** An AppendTarget for `DesWriter.append(s3AppendTarget({ client, bucket, key }))`. */
export function s3AppendTarget(t: S3AppendTarget): AppendTarget {
  return { openAppend: (opts) => openS3Append(t, opts) };
}
