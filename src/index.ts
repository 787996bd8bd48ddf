/**
 * des-pack: many small files in one DES archive, read back with a handful of
 * range reads. This entry point loads no cloud SDK; S3 lives in `des-pack/s3`.
 */
export { DesReader } from "./read/reader.js";
export type { ReaderOptions, ReadOptions, ManyOptions, EntryStat, VerifyReport, VerifyProblem } from "./read/reader.js";
export { DesWriter } from "./write/writer.js";
export type { WriterOptions, AddOptions, AddManyOptions, EntryData, WriterStats } from "./write/writer.js";
export { FileSource } from "./sources/file.js";
export { MemorySource } from "./sources/memory.js";
export { LOCAL_HINTS, MEMORY_HINTS } from "./io/source.js";
export type { RangeSource, ReadHints } from "./io/source.js";
export { LOCAL_COST, REMOTE_COST } from "./io/cost.js";
export type { CostModel, CostWeights } from "./io/cost.js";
export { planReads, estimateWallMs } from "./read/plan.js";
export type { ReadPlan } from "./read/plan.js";
export type { FileSourceOptions } from "./sources/file.js";
export { HttpSource, REMOTE_HINTS } from "./sources/http.js";
export type { HttpSourceOptions, HttpSourceStats } from "./sources/http.js";
export { FileSink } from "./sinks/file.js";
export { MemorySink } from "./sinks/memory.js";
export { packDirectory, listTree } from "./write/pack-directory.js";
export type { PackDirectoryOptions } from "./write/pack-directory.js";
export type { ByteSink } from "./io/sink.js";
export { LocalFolderStore, defaultExternalKey } from "./io/external.js";
export type { ExternalStore, ExternalGetOptions } from "./io/external.js";
export type { Location, LocationEntry } from "./io/location.js";
export { FolderLocation } from "./locations/folder.js";
export { HttpLocation } from "./locations/http.js";
export { parseLocation, parseArchiveLocation } from "./locations/parse.js";
export type { ParseLocationOptions } from "./locations/parse.js";
export type { IoStats } from "./read/fetcher.js";
export type { MetaValue } from "./format/meta.js";
export type { PyJsonValue } from "./format/v1/pyjson.js";
export type { Compression } from "./format/constants.js";
export { coalesceRanges } from "./read/coalesce.js";
export type { RangeWant, RangeGroup } from "./read/coalesce.js";
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
} from "./errors.js";
export type { DesErrorCode, ChecksumSubject } from "./errors.js";
