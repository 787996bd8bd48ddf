/**
 * A complete v2 index (spec 3.4) from records in any order and from any
 * generation: page_bits chosen for the total, records bucketed by name
 * hash, each page sorted by name bytes, then the root.
 */
import { MAX_PAGE_BITS, MAX_PAGE_BYTES, PAGE_OVERHEAD, TARGET_PAGE_BYTES } from "../format/constants.js";
import { xxh64 } from "../format/hash.js";
import { encodeRoot } from "../format/v2/footer.js";
import { pageOfHash, v2RecordLength, writeV2Record } from "../format/v2/page.js";
import type { V2RecordInput } from "../format/v2/page.js";

export interface BuiltIndex {
  /** Pages then root, in order, about 1 MiB a chunk. */
  readonly chunks: readonly Uint8Array[];
  readonly pageBits: number;
  readonly rootHash: bigint;
}

const CHUNK = 1 << 20;

export function buildV2Index(records: readonly V2RecordInput[]): BuiltIndex {
  const n = records.length;
  const lengths = new Uint32Array(n);
  const hashes = new BigUint64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    lengths[i] = v2RecordLength(r);
    hashes[i] = xxh64(r.name);
    total += lengths[i]!;
  }
  let bits = total <= TARGET_PAGE_BYTES ? 0 : Math.min(MAX_PAGE_BITS, Math.ceil(Math.log2(total / TARGET_PAGE_BYTES)));
  let pageOf = new Uint32Array(n);
  let bytes = new Float64Array(1);
  let counts = new Uint32Array(1);
  for (;;) {
    const P = 2 ** bits;
    bytes = new Float64Array(P).fill(PAGE_OVERHEAD);
    counts = new Uint32Array(P);
    pageOf = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const p = pageOfHash(hashes[i]!, bits);
      pageOf[i] = p;
      bytes[p] = bytes[p]! + lengths[i]!;
      counts[p] = counts[p]! + 1;
    }
    let fits = true;
    for (let p = 0; p < P && fits; p++) if (bytes[p]! > MAX_PAGE_BYTES && counts[p]! > 1) fits = false;
    if (fits || bits >= MAX_PAGE_BITS) break;
    bits++;
  }
  const P = 2 ** bits;
  // Counting sort by page, then each page by name bytes.
  const starts = new Uint32Array(P + 1);
  for (let i = 0; i < n; i++) starts[pageOf[i]! + 1]! += 1;
  for (let p = 0; p < P; p++) starts[p + 1]! += starts[p]!;
  const order = new Uint32Array(n);
  const fill = starts.slice(0, P);
  for (let i = 0; i < n; i++) order[fill[pageOf[i]!]!++] = i;

  const chunks: Uint8Array[] = [];
  let buf = new Uint8Array(CHUNK);
  let view = new DataView(buf.buffer);
  let used = 0;
  for (let p = 0; p < P; p++) {
    const members = Array.from(order.subarray(starts[p]!, starts[p + 1]!)).sort((a, b) => Buffer.compare(records[a]!.name, records[b]!.name));
    const pageLength = bytes[p]!;
    if (used + pageLength > buf.length) {
      if (used > 0) chunks.push(buf.subarray(0, used));
      buf = new Uint8Array(Math.max(CHUNK, pageLength));
      view = new DataView(buf.buffer);
      used = 0;
    }
    const at = used;
    view.setUint32(at, members.length, true);
    let o = at + 4;
    for (const i of members) o = writeV2Record(buf, view, o, records[i]!);
    if (o + 8 - at !== pageLength) throw new Error(`internal error: index page ${p} is ${o + 8 - at} bytes, not ${pageLength}`);
    view.setBigUint64(o, xxh64(buf.subarray(at, o)), true);
    used = o + 8;
  }
  if (used > 0) chunks.push(buf.subarray(0, used));
  const root = encodeRoot(Array.from(bytes));
  chunks.push(root);
  return { chunks, pageBits: bits, rootHash: xxh64(root) };
}
