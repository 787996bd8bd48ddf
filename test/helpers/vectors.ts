import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The shared v1 vectors sit beside the repository (`../shared/vectors/des-v1`); DES_VECTORS_DIR overrides. */
export const V1_VECTORS = process.env.DES_VECTORS_DIR ?? path.resolve(here, "../../../shared/vectors/des-v1");

export interface ManifestFile {
  order_added: number;
  name: string;
  size: number;
  sha256: string;
  input_meta: Record<string, unknown> | null;
  stored_meta: Record<string, unknown>;
  flags: number;
  force_external?: boolean;
}

export interface Manifest {
  writer_kwargs: Record<string, unknown>;
  reader_list_files: string[];
  files: ManifestFile[];
  external_files: { name: string; s3_key: string; size_bytes: number; sha256: string }[];
  raw: {
    archive_size: number;
    archive_sha256: string;
    index_entries_in_order: {
      name: string;
      data_offset: number;
      data_length: number;
      meta_offset: number;
      meta_length: number;
      flags: number;
      meta_raw: string;
    }[];
  };
}

export function vectorDir(name: string): string {
  return path.join(V1_VECTORS, name);
}

export function loadManifest(name: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(vectorDir(name), "manifest.json"), "utf8")) as Manifest;
}

export function vectorsPresent(): boolean {
  return fs.existsSync(path.join(V1_VECTORS, "a_small", "archive.des"));
}
