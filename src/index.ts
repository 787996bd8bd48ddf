/**
 * des-pack: many small files in one DES archive, read back with a handful of
 * range reads. This entry point loads no cloud SDK; S3 lives in `des-pack/s3`.
 */
export { DesReader } from "./read/reader.js";
export type {
  ReaderOptions,
  ReadOptions,
  ManyOptions,
  EntryStat,
  VerifyReport,
  VerifyProblem,
  WarmReport,
} from "./read/reader.js";
export type { GenerationInfo, SpaceUsage } from "./read/generations.js";
export { DesWriter } from "./write/writer.js";
export { DesAppendWriter } from "./write/append.js";
export type { AppendOptions, AppendAddOptions, AppendReport, AppendTarget, AppendSink } from "./write/append.js";
export { recoverArchive } from "./write/append-lock.js";
export { repack } from "./write/repack.js";
export type { RepackOptions, RepackReport, RepackEntry } from "./write/repack.js";
export { merge } from "./write/merge.js";
export type { MergeOptions } from "./write/merge.js";
export type { RecoveryOutcome } from "./write/append-lock.js";
export type { WriterOptions, AddOptions, AddManyOptions, EntryData, WriterStats } from "./write/writer.js";
export { FileSource } from "./sources/file.js";
export { MemorySource } from "./sources/memory.js";
export { LOCAL_HINTS, MEMORY_HINTS } from "./io/source.js";
export type { RangeSource, ReadHints } from "./io/source.js";
export { LOCAL_COST, REMOTE_COST } from "./io/cost.js";
export type { CostModel, CostWeights } from "./io/cost.js";
export { CostLearner, fitCost } from "./io/learn.js";
export type { LearnOptions, LearnedCost, ReadObservation } from "./io/learn.js";
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
  DesLockedError,
  DES_ERROR_CODES,
} from "./errors.js";
export type { DesErrorCode, ChecksumSubject } from "./errors.js";
export { SnowflakeNameGenerator } from "./naming/snowflake.js";
export type { SnowflakeOptions, NextOptions } from "./naming/snowflake.js";
export { formatName, parseName, nameChecksum, DesNameError } from "./naming/name.js";
export type { NameParts, ParsedName, NameProblem } from "./naming/name.js";
export { consistentHash, shardFromName } from "./naming/shard.js";
export { assignShards, shardOwner } from "./naming/assign.js";
export type { AssignOptions, AssignStrategy, NodeSet } from "./naming/assign.js";
export { DailyShardedDesStore } from "./store/store.js";
export type { DailyStoreOptions, StorePutOptions, StoreStats } from "./store/store.js";
export type { ShardLayout } from "./store/layout.js";
export { MemoryIndexCache } from "./cache/memory.js";
export type { MemoryIndexCacheOptions, MemoryIndexCacheStats } from "./cache/memory.js";
export { FsIndexCache } from "./cache/fs.js";
export type { FsIndexCacheOptions, FsIndexCacheStats } from "./cache/fs.js";
export { TieredIndexCache } from "./cache/tiered.js";
export type { TieredIndexCacheStats } from "./cache/tiered.js";
export type { IndexCache, IndexCacheStats } from "./io/cache.js";
export { fileStat, fileStatMany, toFileStat } from "./read/fs-stat.js";
export type { FileStat } from "./read/fs-stat.js";
export { FS_META_KEY, decodeFsMeta, fsMetaValue } from "./format/fs-meta.js";
export type { FsKind, FsMeta } from "./format/fs-meta.js";
