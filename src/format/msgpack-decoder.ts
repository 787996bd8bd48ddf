import { Decoder } from "@msgpack/msgpack";
import type { DecoderOptions } from "@msgpack/msgpack";

/** What this module relies on of @msgpack/msgpack's Decoder (public at run time, private in its types). */
interface DecoderInternals {
  pos: number;
  bytes: Uint8Array;
  decodeUtf8String(byteLength: number, headerOffset: number): string;
}

const keepBom = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A MessagePack decoder that keeps a leading U+FEFF in strings and map keys.
 * @msgpack/msgpack decodes strings above 200 bytes with a default
 * TextDecoder, which drops it (a string or key of 300 bytes starting with
 * U+FEFF would read back one character shorter). A string whose bytes start
 * with EF BB BF is decoded again here with `ignoreBOM`; every other string is
 * the library's own result.
 */
export function bomKeepingDecoder(options: DecoderOptions): Decoder {
  const decoder = new Decoder(options);
  const inner = decoder as unknown as DecoderInternals;
  const original = inner.decodeUtf8String.bind(decoder);
  inner.decodeUtf8String = (byteLength: number, headerOffset: number): string => {
    const at = inner.pos + headerOffset;
    const s = original(byteLength, headerOffset);
    const b = inner.bytes;
    if (byteLength >= 3 && b[at] === 0xef && b[at + 1] === 0xbb && b[at + 2] === 0xbf)
      return keepBom.decode(b.subarray(at, at + byteLength));
    return s;
  };
  return decoder;
}
