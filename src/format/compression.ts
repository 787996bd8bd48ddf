import { createRequire } from "node:module";
import type * as Zlib from "node:zlib";
import { DesFormatError } from "../errors.js";
import type { Compression } from "./constants.js";

let loaded: typeof Zlib | undefined;

/**
 * node:zlib, loaded on the first compressed entry: reading and writing
 * uncompressed archives (the default) never loads it. A built-in resolves
 * without the file system, in a bundle too.
 */
function zlib(): typeof Zlib {
  return (loaded ??= createRequire(import.meta.url)("node:zlib") as typeof Zlib);
}

/** Fixed defaults so the same input always compresses to the same bytes. */
export const DEFAULT_GZIP_LEVEL = 6;
export const DEFAULT_BROTLI_QUALITY = 5;

export function compressSync(codec: Compression, data: Uint8Array, level?: number): Uint8Array {
  switch (codec) {
    case "none":
      return data;
    case "gzip":
      return zlib().gzipSync(data, { level: level ?? DEFAULT_GZIP_LEVEL });
    case "brotli": {
      const z = zlib();
      return z.brotliCompressSync(data, {
        params: {
          [z.constants.BROTLI_PARAM_QUALITY]: level ?? DEFAULT_BROTLI_QUALITY,
          [z.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
        },
      });
    }
  }
}

/** A streaming compressor for bodies that arrive in chunks. */
export function compressStream(codec: Exclude<Compression, "none">, level?: number): Zlib.Gzip | Zlib.BrotliCompress {
  const z = zlib();
  return codec === "gzip"
    ? z.createGzip({ level: level ?? DEFAULT_GZIP_LEVEL })
    : z.createBrotliCompress({ params: { [z.constants.BROTLI_PARAM_QUALITY]: level ?? DEFAULT_BROTLI_QUALITY } });
}

export function decompressStream(codec: Exclude<Compression, "none">): Zlib.Gunzip | Zlib.BrotliDecompress {
  return codec === "gzip" ? zlib().createGunzip() : zlib().createBrotliDecompress();
}

/**
 * Inflates stored bytes to exactly `size` bytes. The output is capped at the
 * size the index states, so a corrupt or hostile body cannot make us allocate
 * more than that (no decompression bombs).
 */
export function decompressSync(codec: Compression, stored: Uint8Array, size: number, name: string): Uint8Array {
  if (codec === "none") return stored;
  let out: Buffer;
  try {
    // One output chunk big enough for the whole entry: zlib's default 16 KiB chunks are
    // concatenated at the end, which holds the entry twice (2x the size at the peak).
    const opts = { maxOutputLength: Math.max(1, size), chunkSize: Math.max(64, size + 64) };
    out = codec === "gzip" ? zlib().gunzipSync(stored, opts) : zlib().brotliDecompressSync(stored, opts);
  } catch (e) {
    throw new DesFormatError(`entry ${JSON.stringify(name)}: ${codec} data does not inflate to ${size} bytes`, {
      cause: e,
    });
  }
  if (out.length !== size) {
    throw new DesFormatError(`entry ${JSON.stringify(name)}: inflated to ${out.length} bytes, index says ${size}`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
