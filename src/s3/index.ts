/**
 * des-pack/s3: DES archives on Amazon S3 (and S3-compatible stores) with
 * @aws-sdk/client-s3 and @aws-sdk/lib-storage (optional peer dependencies,
 * loaded only by this entry point).
 */
export { S3Source, S3_HINTS } from "./source.js";
export type { S3ObjectRef, S3SourceOptions, S3SourceStats } from "./source.js";
export { S3DesReader } from "./reader.js";
export type { S3ReaderOptions } from "./reader.js";
export { S3ExternalStore } from "./external.js";
export type { S3ExternalStoreOptions } from "./external.js";
export { S3Sink, createS3Writer, uploadArchive } from "./sink.js";
export type { S3WriteTarget, S3UploadResult } from "./sink.js";
export { HttpSource, REMOTE_HINTS } from "../sources/http.js";
export type { HttpSourceOptions, HttpSourceStats } from "../sources/http.js";
export { S3Location, parseLocation, parseArchiveLocation } from "./location.js";
export type { S3LocationOptions, ParseS3LocationOptions } from "./location.js";
