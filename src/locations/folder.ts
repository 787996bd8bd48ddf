import fs from "node:fs";
import path from "node:path";
import { DesIoError, throwIfAborted } from "../errors.js";
import { LocalFolderStore } from "../io/external.js";
import type { ExternalStore } from "../io/external.js";
import type { Location, LocationEntry } from "../io/location.js";
import type { ByteSink } from "../io/sink.js";
import type { RangeSource } from "../io/source.js";
import { FileSink } from "../sinks/file.js";
import { FileSource, fileVersion } from "../sources/file.js";
import type { FileSourceOptions } from "../sources/file.js";
import { checkListPrefix, checkLocationKey, compareKeys } from "./keys.js";

/** Temporary files of FileSink (`.<name>.<pid>-<random>.tmp`): never listed. */
const SINK_TEMP = /^\..+\.\d+-[0-9a-f]{12}\.tmp$/;

/**
 * A local folder as a Location: archives are files under it (sources are
 * FileSources, sinks FileSinks: temporary file, fsync, rename), external
 * bodies live under it too (a LocalFolderStore at the folder), keys map to
 * relative paths (`a/b.des` is `<root>/a/b.des`).
 */
export class FolderLocation implements Location {
  readonly root: string;
  readonly url: string;
  private readonly sourceOptions: FileSourceOptions;

  constructor(root: string, opts: { readonly sourceOptions?: FileSourceOptions } = {}) {
    this.root = path.resolve(root);
    this.url = this.root;
    this.sourceOptions = opts.sourceOptions ?? {};
  }

  /** The file a key names. */
  pathOf(key: string): string {
    return path.join(this.root, ...checkLocationKey(key).split("/"));
  }

  child(key: string): FolderLocation {
    return new FolderLocation(this.pathOf(key), { sourceOptions: this.sourceOptions });
  }

  async source(key: string): Promise<RangeSource> {
    return FileSource.open(this.pathOf(key), this.sourceOptions);
  }

  async sink(key: string, opts: { readonly overwrite?: boolean } = {}): Promise<ByteSink> {
    const file = this.pathOf(key);
    try {
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
    } catch (e) {
      throw new DesIoError(`cannot create the folder of ${file}: ${(e as Error).message}`, { cause: e });
    }
    return FileSink.create(file, { overwrite: opts.overwrite ?? false });
  }

  externalStore(): ExternalStore {
    return new LocalFolderStore(this.root);
  }

  async stat(key: string): Promise<LocationEntry | undefined> {
    const file = this.pathOf(key);
    let st: fs.BigIntStats | undefined;
    try {
      st = await fs.promises.stat(file, { bigint: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw new DesIoError(`cannot stat ${file}: ${(e as Error).message}`, { cause: e });
    }
    if (!st.isFile()) return undefined;
    return { key, size: Number(st.size), version: fileVersion(st) };
  }

  /**
   * Regular files under the folder whose key starts with `prefix`, in UTF-8
   * byte order of key (S3's order): each folder's names are sorted with
   * sub-folders compared as `name/`, so the walk itself is in key order and
   * holds one folder listing per level, not every key.
   */
  async *list(prefix?: string, signal?: AbortSignal): AsyncIterable<LocationEntry> {
    const want = checkListPrefix(prefix);
    yield* this.walk(this.root, "", want, signal);
  }

  private async *walk(
    dir: string,
    base: string,
    want: string,
    signal: AbortSignal | undefined,
  ): AsyncIterable<LocationEntry> {
    throwIfAborted(signal);
    let names: fs.Dirent[];
    try {
      names = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw new DesIoError(`cannot list ${dir}: ${(e as Error).message}`, { cause: e });
    }
    const items = names
      .filter((d) => d.isDirectory() || d.isFile())
      .map((d) => ({ d, sortKey: base + d.name + (d.isDirectory() ? "/" : "") }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const { d, sortKey } of items) {
      if (d.isDirectory()) {
        // Descend only where keys can start with the prefix.
        if (sortKey.startsWith(want) || want.startsWith(sortKey))
          yield* this.walk(path.join(dir, d.name), sortKey, want, signal);
        continue;
      }
      if (!sortKey.startsWith(want) || SINK_TEMP.test(d.name)) continue;
      const entry = await this.stat(sortKey).catch(() => undefined);
      if (entry) yield entry;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.promises.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new DesIoError(`cannot delete ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
