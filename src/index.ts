/**
 * des-pack: many small files in one DES archive, read back with a handful of
 * range reads. This entry point loads no cloud SDK; S3 lives in `des-pack/s3`.
 */
export { DesReader } from "./core/reader.js";
export type { ReaderOptions, ReadOptions, ManyOptions, EntryStat, VerifyReport, VerifyProblem } from "./core/reader.js";
export { DesWriter } from "./core/writer.js";
export type { WriterOptions, AddOptions, AddManyOptions, EntryData, WriterStats } from "./core/writer.js";
export { FileSource, MemorySource, LOCAL_HINTS, MEMORY_HINTS } from "./core/source.js";
export type { RangeSource, ReadHints, FileSourceOptions } from "./core/source.js";
export { HttpSource, REMOTE_HINTS } from "./core/http-source.js";
export type { HttpSourceOptions, HttpSourceStats } from "./core/http-source.js";
export { FileSink, MemorySink } from "./core/sink.js";
export { packDirectory, listTree } from "./core/pack-directory.js";
export type { PackDirectoryOptions } from "./core/pack-directory.js";
export type { ByteSink } from "./core/sink.js";
export { LocalFolderStore, defaultExternalKey } from "./core/external.js";
export type { ExternalStore } from "./core/external.js";
export type { IoStats } from "./core/fetcher.js";
export type { MetaValue } from "./core/meta.js";
export type { PyJsonValue } from "./core/pyjson.js";
export type { Compression } from "./core/format/constants.js";
export { coalesceRanges } from "./core/coalesce.js";
export type { RangeWant, RangeGroup } from "./core/coalesce.js";
export {
  DesError,
  DesFormatError,
  DesChecksumError,
  DesNotFoundError,
  DesDuplicateError,
  DesExistsError,
  DesChangedError,
  DesUnsupportedError,
  DesInvalidArgumentError,
  DesAbortedError,
  DesIoError,
  DesExternalError,
  DesClosedError,
  DES_ERROR_CODES,
} from "./core/errors.js";
export type { DesErrorCode, ChecksumSubject } from "./core/errors.js";
