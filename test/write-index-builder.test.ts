import { beforeAll, describe, expect, it } from "vitest";
import { DesFormatError } from "../src/errors.js";
import { ByteWriter, utf8Encode } from "../src/format/bytes.js";
import { FLAG_TOMBSTONE, HEADER_SIZE, MAX_PAGE_BYTES, V2_FOOTER_SIZE } from "../src/format/constants.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { decodeRoot, decodeV2Footer, encodeV2Footer, encodeV2Header } from "../src/format/v2/footer.js";
import type { V2Footer } from "../src/format/v2/footer.js";
import { decodePage, pageOfHash } from "../src/format/v2/page.js";
import type { V2RecordInput } from "../src/format/v2/page.js";
import {
  firstPageBits,
  indexBytes,
  planV2Index,
  recordInputOf,
  recordsOf,
  v2FooterOf,
} from "../src/format/v2/index-builder.js";
import type { IndexRecordSource } from "../src/format/v2/index-builder.js";
import {
  DesDuplicateError,
  DesInvalidArgumentError,
  DesReader,
  DesWriter,
  MemorySink,
  MemorySource,
} from "../src/index.js";

beforeAll(async () => {
  await loadHasher();
});

/** Every record of a single-generation v2 archive, decoded from its pages, with its footer and index bytes. */
function recordsOfArchive(bytes: Uint8Array): { footer: V2Footer; index: Uint8Array; records: V2RecordInput[] } {
  const footer = decodeV2Footer(bytes.subarray(bytes.length - V2_FOOTER_SIZE), bytes.length);
  const index = bytes.subarray(footer.indexStart, footer.indexStart + footer.indexLength);
  const root = index.subarray(index.length - 4 * 2 ** footer.pageBits);
  const table = decodeRoot(root, footer);
  const records: V2RecordInput[] = [];
  for (let p = 0; p < table.offsets.length; p++) {
    const page = bytes.subarray(table.offsets[p]!, table.offsets[p]! + table.lengths[p]!);
    for (const r of decodePage(page, p, footer).records) records.push(recordInputOf(r));
  }
  return { footer, index, records };
}

/** A deterministic shuffle (xorshift), so a failure reproduces. */
function shuffled<T>(xs: readonly T[], seed = 7): T[] {
  const out = xs.slice();
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function writeArchive(n: number, nameOf: (i: number) => string): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < n; i++) {
      await w.add(
        nameOf(i),
        utf8Encode(`body ${i}`),
        i % 3 === 0 ? { meta: { i } } : i % 3 === 1 ? { compress: "gzip" } : {},
      );
    }
  });
  return sink.bytes();
}

/** A v2 archive of the records (whose data and meta must already be in `w`), indexed by the builder. */
function assemble(w: ByteWriter, records: IndexRecordSource, duplicates: "error" | "last" = "error"): Uint8Array {
  const dataLength = w.length - HEADER_SIZE;
  const indexStart = w.length;
  const plan = planV2Index(records, { duplicates });
  w.bytes(indexBytes(plan));
  w.bytes(
    encodeV2Footer(
      v2FooterOf(plan, { dataStart: HEADER_SIZE, dataLength, metaStart: indexStart, metaLength: 0, indexStart }),
    ),
  );
  return w.finish();
}

function body(w: ByteWriter, name: string, text: string, flags = 0): V2RecordInput {
  const b = utf8Encode(text);
  const offset = w.length;
  w.bytes(b);
  return {
    name: utf8Encode(name),
    flags,
    codec: 0,
    size: b.length,
    storedSize: b.length,
    dataOffset: offset,
    dataHash: b.length ? xxh64(b) : 0n,
    externalKey: undefined,
    metaLength: 0,
    metaOffset: 0,
    metaHash: 0n,
  };
}

function tombstone(name: string): V2RecordInput {
  return {
    name: utf8Encode(name),
    flags: FLAG_TOMBSTONE,
    codec: 0,
    size: 0,
    storedSize: 0,
    dataOffset: 0,
    dataHash: 0n,
    externalKey: undefined,
    metaLength: 0,
    metaOffset: 0,
    metaHash: 0n,
  };
}

describe("v2 index builder", () => {
  it("rebuilds the writer's index byte for byte from its records in any order (one page and many)", async () => {
    for (const n of [5, 6000]) {
      const bytes = await writeArchive(n, (i) => `dir/${(i * 7919) % n}.txt`);
      const { footer, index, records } = recordsOfArchive(bytes);
      expect(records.length).toBe(n);
      for (const order of [records, shuffled(records), records.slice().reverse()]) {
        const plan = planV2Index(recordsOf(order));
        expect(plan.pageBits).toBe(footer.pageBits);
        expect(plan.entryCount).toBe(n);
        expect(plan.rootHash).toBe(footer.rootHash);
        expect(plan.indexLength).toBe(footer.indexLength);
        expect(Buffer.compare(indexBytes(plan), index)).toBe(0);
      }
      if (n > 1000) expect(footer.pageBits).toBeGreaterThan(0);
    }
  });

  it("chooses the smallest page_bits from the spec's start whose pages stay within 64 KiB", async () => {
    // Long names: about 250 bytes a record, so 6,000 records need pages.
    const records = Array.from({ length: 6000 }, (_, i) => tombstone(`${"x".repeat(240)}-${i}`));
    const plan = planV2Index(recordsOf(records));
    const total = records.reduce((a, r) => a + r.name.length + 4, 0);
    const start = firstPageBits(total);
    expect(start).toBe(Math.ceil(Math.log2(total / 8192)));
    expect(plan.pageBits).toBeGreaterThanOrEqual(start);
    expect(plan.pageLengths.length).toBe(2 ** plan.pageBits);
    expect(Math.max(...plan.pageLengths)).toBeLessThanOrEqual(MAX_PAGE_BYTES);
    expect(plan.pageLengths.reduce((a, b) => a + b, 0) + 4 * plan.pageLengths.length).toBe(plan.indexLength);
    // One bit fewer would have a page over 64 KiB (or be below the start).
    if (plan.pageBits > start) {
      const shift = 32 - (plan.pageBits - 1);
      const sizes = new Map<number, number>();
      for (const r of records) {
        const p = Number(xxh64(r.name) >> 32n) >>> shift;
        sizes.set(p, (sizes.get(p) ?? 12) + r.name.length + 4);
      }
      expect(Math.max(...sizes.values())).toBeGreaterThan(MAX_PAGE_BYTES);
    }
    // Chunks are fresh buffers that add up to the index.
    const chunks = [...plan.chunks()];
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
    expect(chunks.reduce((a, c) => a + c.length, 0)).toBe(plan.indexLength);
  });

  it("starts from pages of 4-8 KiB up to 8,192 pages, then lets pages grow to 32 KiB instead of the root (spec 3.4)", () => {
    expect(firstPageBits(0)).toBe(0);
    expect(firstPageBits(8192)).toBe(0);
    expect(firstPageBits(8193)).toBe(1);
    expect(firstPageBits(3_200_000)).toBe(9); // 100,000 entries of 32-byte names: 512 pages of ~6 KiB
    expect(firstPageBits(8192 * 2 ** 13)).toBe(13); // 64 MiB of records: still 8,192 pages of 8 KiB
    expect(firstPageBits(8192 * 2 ** 13 + 1)).toBe(13); // beyond: 8,192 pages of up to 32 KiB ...
    expect(firstPageBits(32768 * 2 ** 13)).toBe(13);
    expect(firstPageBits(32768 * 2 ** 13 + 1)).toBe(14); // ... then more pages of at most 32 KiB
    expect(firstPageBits(2 ** 50)).toBe(24);
  });

  it("refuses duplicate names by default, and keeps the last record of a name with duplicates: 'last'", async () => {
    const w = new ByteWriter().bytes(encodeV2Header());
    const old = [body(w, "a", "old a"), body(w, "b", "old b"), body(w, "c", "old c")];
    const next = [body(w, "a", "new a"), tombstone("b"), body(w, "d", "new d")];
    expect(() => planV2Index(recordsOf([...old, ...next]))).toThrow(DesDuplicateError);
    const bytes = assemble(w, recordsOf([...old, ...next]), "last");
    const footer = decodeV2Footer(bytes.subarray(bytes.length - V2_FOOTER_SIZE), bytes.length);
    // a (new), b (tombstone), c (old), d (new): tombstones count, superseded records do not.
    expect(footer.entryCount).toBe(4);
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.list()).toEqual(["a", "c", "d"]);
    expect(Buffer.from(await r.get("a")).toString()).toBe("new a");
    expect(Buffer.from(await r.get("c")).toString()).toBe("old c");
    expect(await r.has("b")).toBe(false);
    expect((await r.verify()).ok).toBe(true);
  });

  it("reads records through a cursor that reuses one object, and hashes names itself without nameKey", async () => {
    const w = new ByteWriter().bytes(encodeV2Header());
    const inputs = Array.from({ length: 300 }, (_, i) => body(w, `n${i}`, `v${i}`));
    const shared = { ...inputs[0]! };
    const cursor: IndexRecordSource = { count: inputs.length, at: (i) => Object.assign(shared, inputs[i]!) };
    const fromCursor = indexBytes(planV2Index(cursor));
    expect(Buffer.compare(fromCursor, indexBytes(planV2Index(recordsOf(shuffled(inputs)))))).toBe(0);
    const r = await DesReader.open(new MemorySource(assemble(w, cursor)));
    expect(Buffer.from(await r.get("n123")).toString()).toBe("v123");
  });

  it("takes a source in page order as it comes (pageOrderBits), and sorts when the new index has fewer page bits", async () => {
    const bytes = await writeArchive(6000, (i) => `dir/${(i * 7919) % 6000}.txt`);
    const { footer, index, records } = recordsOfArchive(bytes);
    expect(footer.pageBits).toBeGreaterThan(1);
    /** The records page by page under `bits`, each page in name order: the order an append carries them in. */
    const pageOrder = (bits: number): V2RecordInput[] =>
      records
        .map((r) => ({ r, p: pageOfHash(xxh64(r.name), bits) }))
        .sort((x, y) => x.p - y.p || Buffer.compare(x.r.name, y.r.name))
        .map((x) => x.r);
    const vouched = (bits: number): IndexRecordSource => ({ ...recordsOf(pageOrder(bits)), pageOrderBits: bits });
    // Under the index's own page bits (and fewer, each new page a run of one old page): the same bytes, nothing sorted.
    for (const bits of [footer.pageBits, footer.pageBits - 1]) {
      const plan = planV2Index(vouched(bits));
      expect(plan.pageBits).toBe(footer.pageBits);
      expect(Buffer.compare(indexBytes(plan), index)).toBe(0);
    }
    // Ordered under more bits than the index gets (as after deletes): its pages are merged and must be sorted.
    const merged = planV2Index(vouched(footer.pageBits + 2));
    expect(merged.pageBits).toBe(footer.pageBits);
    expect(Buffer.compare(indexBytes(merged), index)).toBe(0);
    // The vouched order is used as it is: the same records out of page order give another (wrong) index, so the
    // option is for sources that build their order, as CarriedRecords.merged does.
    const wrong = { ...recordsOf(records.slice().reverse()), pageOrderBits: footer.pageBits };
    expect(Buffer.compare(indexBytes(planV2Index(wrong)), index)).not.toBe(0);
  });

  it("does not trust the page order of a source whose keys disagree with the names' hashes", async () => {
    const bytes = await writeArchive(6000, (i) => `dir/${(i * 7919) % 6000}.txt`);
    const { footer, index, records } = recordsOfArchive(bytes);
    // Claimed under two bits fewer than the index needs, as a carried page set with fewer pages would be.
    const bits = footer.pageBits - 2;
    const shift = 32 - bits;
    const pageOf = (r: V2RecordInput): number => pageOfHash(xxh64(r.name), bits);
    const byPage = (a: { r: V2RecordInput; p: number }, b: { r: V2RecordInput; p: number }): number =>
      a.p - b.p || Buffer.compare(a.r.name, b.r.name);
    const placed = records.map((r) => ({ r, p: pageOf(r) })).sort(byPage);
    // A foreign writer's page: the smallest name of page 0 came in page 1's run, and its key says so.
    const stray = placed.find((x) => x.p === 0)!;
    stray.p = 1;
    placed.sort(byPage);
    const source: IndexRecordSource = {
      ...recordsOf(placed.map((x) => x.r)),
      nameKey: (i) => (placed[i]!.p << shift) >>> 0,
      keyBits: bits,
      pageOrderBits: bits,
    };
    const plan = planV2Index(source);
    expect(plan.pageBits).toBe(footer.pageBits);
    // Its keys were made exact, the stray record went to its own page, and the pages were sorted: the writer's index.
    expect(Buffer.compare(indexBytes(plan), index)).toBe(0);
  });

  it("refuses a source that claims ascending order falsely", () => {
    const records = ["b", "a"].map((n) => tombstone(n));
    expect(() => [...planV2Index(recordsOf(records), { ascending: true }).chunks()]).toThrow(DesInvalidArgumentError);
  });
});

describe("decodeRoot", () => {
  const footerFor = (root: Uint8Array, pageBits: number, indexLength: number): V2Footer => ({
    pageBits,
    requiredFeatures: 0,
    dataStart: HEADER_SIZE,
    dataLength: 0,
    metaStart: HEADER_SIZE,
    metaLength: 0,
    indexStart: 1000,
    indexLength,
    entryCount: 0,
    prevFooterOffset: 0,
    archiveLength: 1000 + indexLength + V2_FOOTER_SIZE,
    rootHash: xxh64(root),
  });
  const rootOf = (lengths: number[]): Uint8Array => {
    const w = new ByteWriter(4 * lengths.length);
    for (const l of lengths) w.u32(l);
    return w.finish();
  };

  it("turns page lengths into absolute offsets", async () => {
    await loadHasher();
    const root = rootOf([12, 30, 100, 12]);
    const t = decodeRoot(root, footerFor(root, 2, 154 + 16));
    expect([...t.offsets]).toEqual([1000, 1012, 1042, 1142]);
    expect([...t.lengths]).toEqual([12, 30, 100, 12]);
  });

  it("refuses a page below 12 bytes, lengths that do not add up, and a root of the wrong size", async () => {
    await loadHasher();
    const short = rootOf([12, 11]);
    expect(() => decodeRoot(short, footerFor(short, 1, 23 + 8))).toThrow(/v2 root: page 1 length 11 is below 12/);
    const off = rootOf([12, 20]);
    expect(() => decodeRoot(off, footerFor(off, 1, 40 + 8))).toThrow(/v2 root: page lengths do not add up/);
    const odd = rootOf([12, 20, 12]);
    expect(() => decodeRoot(odd, footerFor(odd, 1, 44 + 12))).toThrow(/v2 root: 12 bytes, expected 8/);
    expect(() => decodeRoot(odd, footerFor(odd, 1, 44 + 12))).toThrow(DesFormatError);
  });
});
