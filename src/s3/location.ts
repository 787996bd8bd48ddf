import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { ListObjectsV2CommandOutput, S3ClientConfig } from "@aws-sdk/client-s3";
import { DesInvalidArgumentError, DesIoError } from "../errors.js";
import type { ExternalStore } from "../io/external.js";
import type { Location, LocationEntry } from "../io/location.js";
import type { ByteSink } from "../io/sink.js";
import type { RangeSource } from "../io/source.js";
import { checkListPrefix, checkLocationKey } from "../locations/keys.js";
import { parseLocation as parseLocalLocation, splitArchivePath } from "../locations/parse.js";
import type { ParseLocationOptions } from "../locations/parse.js";
import { describeS3Error, isNotFound } from "./errors.js";
import { S3ExternalStore } from "./external.js";
import type { S3ExternalStoreOptions } from "./external.js";
import { S3Sink } from "./sink.js";
import type { S3WriteTarget } from "./sink.js";
import { S3Source } from "./source.js";
import type { S3SourceOptions } from "./source.js";

export interface S3LocationOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** A folder of the bucket: `""` (the whole bucket) or `a/b` (a trailing `/` is added). */
  readonly prefix?: string;
  /** Options of the S3Sources it opens. */
  readonly source?: S3SourceOptions;
  /** Upload options of its sinks (part size, queue, verify, content type). */
  readonly sink?: Partial<Pick<S3WriteTarget, "partSize" | "queueSize" | "verify" | "contentType">>;
  /** Keys per ListObjectsV2 page (`MaxKeys`). Default: S3's 1000. */
  readonly listPageSize?: number;
  /** Options of its external store (retries, timeouts; keys are relative to the location). */
  readonly external?: Omit<S3ExternalStoreOptions, "client" | "bucket" | "prefix">;
}

/**
 * An `s3://bucket/prefix` as a Location: keys are relative to the prefix;
 * sources are S3Sources (one suffix GET to open, ETag-pinned reads), sinks
 * are write-once S3Sinks (`If-None-Match: *` unless `overwrite`), external
 * bodies live under the prefix too, listings are ListObjectsV2 pages.
 */
export class S3Location implements Location {
  readonly client: S3Client;
  readonly bucket: string;
  /** `""` or ends with `/`. */
  readonly prefix: string;
  readonly url: string;
  private readonly opts: S3LocationOptions;

  constructor(opts: S3LocationOptions) {
    if (!opts?.client) throw new DesInvalidArgumentError("S3Location needs an S3Client");
    if (typeof opts.bucket !== "string" || opts.bucket.length === 0 || opts.bucket.includes("/"))
      throw new DesInvalidArgumentError("S3Location needs a bucket name");
    const raw = (opts.prefix ?? "").replace(/^\/+/, "");
    if (raw !== "") checkLocationKey(raw.replace(/\/+$/, ""), "prefix");
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = raw === "" ? "" : raw.replace(/\/+$/, "") + "/";
    this.url = `s3://${this.bucket}/${this.prefix.replace(/\/$/, "")}`;
    this.opts = opts;
  }

  /** The bucket key a location key names. */
  objectKey(key: string): string {
    return this.prefix + checkLocationKey(key);
  }

  child(key: string): S3Location {
    return new S3Location({ ...this.opts, prefix: this.objectKey(key) });
  }

  async source(key: string): Promise<RangeSource> {
    return new S3Source({ client: this.client, bucket: this.bucket, key: this.objectKey(key) }, this.opts.source ?? {});
  }

  async sink(key: string, opts: { readonly overwrite?: boolean } = {}): Promise<ByteSink> {
    return S3Sink.create({
      ...this.opts.sink,
      client: this.client,
      bucket: this.bucket,
      key: this.objectKey(key),
      overwrite: opts.overwrite ?? false,
    });
  }

  externalStore(): ExternalStore {
    return new S3ExternalStore({
      ...this.opts.external,
      client: this.client,
      bucket: this.bucket,
      prefix: this.prefix,
    });
  }

  async stat(key: string, signal?: AbortSignal): Promise<LocationEntry | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
        signal ? { abortSignal: signal } : {},
      );
      return { key, size: out.ContentLength ?? 0, version: out.ETag };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw new DesIoError(`HEAD s3://${this.bucket}/${this.objectKey(key)} failed: ${describeS3Error(e)}`, {
        cause: e,
      });
    }
  }

  /** Objects under the location whose key starts with `prefix`, in S3's order (UTF-8 bytes), one ListObjectsV2 page at a time. */
  async *list(prefix?: string, signal?: AbortSignal): AsyncIterable<LocationEntry> {
    const want = this.prefix + checkListPrefix(prefix);
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: want,
            ...(this.opts.listPageSize !== undefined ? { MaxKeys: this.opts.listPageSize } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (e) {
        throw new DesIoError(`cannot list s3://${this.bucket}/${want}: ${describeS3Error(e)}`, { cause: e });
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, version: o.ETag };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw new DesIoError(`cannot delete s3://${this.bucket}/${this.objectKey(key)}: ${describeS3Error(e)}`, {
        cause: e,
      });
    }
  }
}

export interface ParseS3LocationOptions extends ParseLocationOptions {
  /** The client for `s3://` locations. Default: a new S3Client from `clientConfig` (and the usual AWS environment). */
  readonly client?: S3Client;
  readonly clientConfig?: S3ClientConfig;
  /** Options of the S3Location made for `s3://`. */
  readonly s3?: Omit<S3LocationOptions, "client" | "bucket" | "prefix">;
}

/**
 * `parseLocation` of the root entry (paths, `file://`, read-only
 * `http(s)://`) plus `s3://bucket/prefix`.
 */
export function parseLocation(str: string, opts: ParseS3LocationOptions = {}): Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(str);
  if (!m) return parseLocalLocation(str, opts);
  const client = opts.client ?? new S3Client(opts.clientConfig ?? {});
  return new S3Location({ ...opts.s3, client, bucket: m[1]!, prefix: m[2]! });
}

/** The location holding an archive (`s3://bucket/dir/a.des`, a path, a URL) and its key there. */
export function parseArchiveLocation(
  str: string,
  opts: ParseS3LocationOptions = {},
): { readonly location: Location; readonly key: string } {
  if (/^s3:\/\/[^/]+\/?$/i.test(str))
    throw new DesInvalidArgumentError(`${JSON.stringify(str)} names a bucket, not an archive`);
  const { parent, key } = splitArchivePath(str);
  return { location: parseLocation(parent, opts), key };
}
