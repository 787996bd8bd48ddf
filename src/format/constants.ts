/** Byte-level constants of the DES format; see spec/des-format.md. */

export const HEADER_MAGIC = new Uint8Array([0x44, 0x45, 0x53, 0x48, 0x45, 0x41, 0x44, 0x31]); // "DESHEAD1"
export const FOOTER_MAGIC = new Uint8Array([0x44, 0x45, 0x53, 0x46, 0x4f, 0x4f, 0x54, 0x31]); // "DESFOOT1"

export const HEADER_SIZE = 16;
export const V1_FOOTER_SIZE = 72;
export const V2_FOOTER_SIZE = 128;
export const V1_RECORD_FIXED = 38;

export const FLAG_EXTERNAL = 0x01;
export const FLAG_COMPRESSED = 0x02;
export const FLAG_ENCRYPTED = 0x04;
export const FLAG_TOMBSTONE = 0x08;
/** Flags this reader knows how to honour; any other bit makes an entry unreadable (but listable). */
export const KNOWN_FLAGS = FLAG_EXTERNAL | FLAG_COMPRESSED | FLAG_TOMBSTONE;

export const CODEC_NONE = 0;
export const CODEC_GZIP = 1;
export const CODEC_BROTLI = 2;

export type Compression = "none" | "gzip" | "brotli";

export function codecName(codec: number): Compression | undefined {
  switch (codec) {
    case CODEC_NONE:
      return "none";
    case CODEC_GZIP:
      return "gzip";
    case CODEC_BROTLI:
      return "brotli";
    default:
      return undefined;
  }
}

export function codecId(c: Compression): number {
  return c === "gzip" ? CODEC_GZIP : c === "brotli" ? CODEC_BROTLI : CODEC_NONE;
}

export const MAX_PAGE_BITS = 24;
/** A page never exceeds this unless it holds a single record that is larger by itself. */
export const MAX_PAGE_BYTES = 65536;
/** Pages aim at this average size while the root stays within SMALL_PAGE_MAX_BITS (spec 3.4). */
export const SMALL_PAGE_BYTES = 8192;
/** The most page_bits the small-page rule may reach: 8,192 pages, a 32 KiB root. */
export const SMALL_PAGE_MAX_BITS = 13;
/** Beyond that, pages aim at this average size instead. */
export const TARGET_PAGE_BYTES = 32768;
export const PAGE_OVERHEAD = 12; // u32 count + u64 checksum
export const MIN_V2_RECORD = 3;

export const MAX_NAME_BYTES = 65535;
export const DEFAULT_TAIL_SIZE = 65536;

export function startsWith(bytes: Uint8Array, at: number, magic: Uint8Array): boolean {
  if (at < 0 || at + magic.length > bytes.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[at + i] !== magic[i]) return false;
  return true;
}
