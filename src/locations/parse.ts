import path from "node:path";
import { fileURLToPath } from "node:url";
import { DesInvalidArgumentError } from "../errors.js";
import type { Location } from "../io/location.js";
import type { FileSourceOptions } from "../sources/file.js";
import type { HttpSourceOptions } from "../sources/http.js";
import { FolderLocation } from "./folder.js";
import { HttpLocation } from "./http.js";

export interface ParseLocationOptions {
  /** Options of the FileSources a folder location opens. */
  readonly file?: FileSourceOptions;
  /** Options of the HttpSources an http(s) location opens. */
  readonly http?: HttpSourceOptions;
}

/**
 * A Location from what a user types: a path or `file://` URL (a folder), or
 * an `http(s)://` URL (read-only). `s3://` needs `parseLocation` from
 * `des-pack/s3`, which also knows these.
 */
export function parseLocation(str: string, opts: ParseLocationOptions = {}): Location {
  if (typeof str !== "string" || str.length === 0)
    throw new DesInvalidArgumentError("a location must be a non-empty string");
  if (/^file:/i.test(str)) return new FolderLocation(fileURLToPath(str), opts.file ? { sourceOptions: opts.file } : {});
  if (/^https?:\/\//i.test(str)) return new HttpLocation(str, opts.http);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(str);
  if (scheme) {
    const hint =
      scheme[1]!.toLowerCase() === "s3" ? ' (import parseLocation from "des-pack/s3" for s3:// locations)' : "";
    throw new DesInvalidArgumentError(`unsupported location ${JSON.stringify(str)}${hint}`);
  }
  return new FolderLocation(str, opts.file ? { sourceOptions: opts.file } : {});
}

/** Splits an archive's address into the location holding it and its key there (`dir/a.des` -> `dir`, `a.des`). */
export function splitArchivePath(str: string): { readonly parent: string; readonly key: string } {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(str);
  if (!url && !/^file:/i.test(str)) return { parent: path.dirname(path.resolve(str)), key: path.basename(str) };
  const cut = str.replace(/\?.*$/, "").lastIndexOf("/");
  const key = str.slice(cut + 1).replace(/\?.*$/, "");
  if (key.length === 0) throw new DesInvalidArgumentError(`${JSON.stringify(str)} names a folder, not an archive`);
  return { parent: str.slice(0, cut + 1), key: decodeURIComponent(key) };
}

/** The location holding an archive and the archive's key in it. */
export function parseArchiveLocation(
  str: string,
  opts: ParseLocationOptions = {},
): { readonly location: Location; readonly key: string } {
  const { parent, key } = splitArchivePath(str);
  return { location: parseLocation(parent, opts), key };
}
