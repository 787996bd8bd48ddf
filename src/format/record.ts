import type { Compression } from "./constants.js";

/**
 * One index record, decoded, the same shape for v1 and v2. The reader works
 * only with these; the per-version decoders produce them.
 */
export interface EntryRecord {
  readonly name: string;
  readonly flags: number;
  /** Undefined when the codec byte is unknown to this reader. */
  readonly compression: Compression | undefined;
  /** Original (uncompressed) length. */
  readonly size: number;
  /** Bytes in DATA (or in the external object). */
  readonly storedSize: number;
  /** Absolute offset of the stored bytes; 0 when there are none in the archive. */
  readonly dataOffset: number;
  readonly dataHash: bigint | undefined;
  readonly metaOffset: number;
  readonly metaLength: number;
  readonly metaHash: bigint | undefined;
  /** v2: the recorded key. v1: undefined (the key is in the meta). */
  readonly externalKey: string | undefined;
}
