import type { ExternalStore } from "./external.js";
import type { ByteSink } from "./sink.js";
import type { RangeSource } from "./source.js";

/**
 * A place that holds archives: a local folder or an `s3://bucket/prefix`.
 * Everything above the read and write layers (append, the daily store, the
 * command line) takes a Location instead of branching on "path or URL".
 * Keys are `/`-separated and relative to the location.
 */
export interface Location {
  /** Printable and stable: an absolute path, or `s3://bucket/prefix`. */
  readonly url: string;
  /** The location `key` names below this one (a sub-folder, a longer prefix). */
  child(key: string): Location;
  /** Opens `key` for range reads. */
  source(key: string, signal?: AbortSignal): Promise<RangeSource>;
  /** A sink that makes `key` visible only on commit; refuses an existing key unless `overwrite`. */
  sink(key: string, opts?: { readonly overwrite?: boolean }): Promise<ByteSink>;
  /** Where external bodies of archives at this location live. */
  externalStore(): ExternalStore;
  /** Size and version token of `key`, or undefined when there is none. */
  stat(key: string, signal?: AbortSignal): Promise<LocationEntry | undefined>;
  /** Keys under `prefix` (every key when omitted), in lexicographic order of key. */
  list(prefix?: string, signal?: AbortSignal): AsyncIterable<LocationEntry>;
  delete(key: string): Promise<void>;
}

export interface LocationEntry {
  readonly key: string;
  readonly size: number;
  /** Device/inode/size/mtime for files, the ETag on S3. */
  readonly version: string | undefined;
}
