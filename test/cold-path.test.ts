import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader, DesWriter, HttpSource, LOCAL_HINTS, MEMORY_HINTS, REMOTE_HINTS } from "../src/index.js";
import type { ReadHints } from "../src/index.js";
import { RecordingSource, parseV2Footer } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";
import { MemorySink, MemorySource } from "../src/index.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { pageOfHash } from "../src/format/v2/page.js";
import { Slab, sliceWant } from "../src/read/coalesce.js";
import { decodeV2Footer } from "../src/format/v2/footer.js";
import type { RangeGroup } from "../src/read/coalesce.js";

const ENTRIES = 20_000;
const name = (i: number): string => `dir${i % 97}/entry-${String(i).padStart(6, "0")}.bin`;
const body = (i: number): Uint8Array => new Uint8Array(50 + (i % 150)).fill(i & 0xff);

let archive: Uint8Array;
let file: string;

beforeAll(async () => {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink);
  await w.addMany(Array.from({ length: ENTRIES }, (_, i) => [name(i), body(i)] as const));
  await w.close();
  archive = sink.bytes();
  file = path.join(tempDir(), "cold.des");
  const fw = await DesWriter.create(file);
  await fw.addMany(Array.from({ length: ENTRIES }, (_, i) => [name(i), body(i)] as const));
  await fw.close();
});

describe("tail size by medium", () => {
  it("a local file reads an 8 KiB tail at open (footer and root), then exactly one page and the entry", async () => {
    const f = parseV2Footer(archive);
    expect(f.pageBits).toBeGreaterThan(0); // several pages, none inside the tail
    const reader = await DesReader.open(file);
    try {
      expect(reader.ioStats).toEqual({ requests: 1, bytes: LOCAL_HINTS.tailBytes });
      const got = await reader.get(name(12_345));
      expect(got).toEqual(body(12_345));
      const io = reader.ioStats;
      expect(io.requests).toBe(3);
      const page = io.bytes - LOCAL_HINTS.tailBytes! - body(12_345).length;
      expect(page).toBeGreaterThan(12);
      expect(page).toBeLessThanOrEqual(65_536);
    } finally {
      await reader.close();
    }
  });

  it("any source's tailBytes hint sets the tail; a root outside it is read exactly; tailSize still overrides", async () => {
    const f = parseV2Footer(archive);
    const rootLength = 4 * 2 ** f.pageBits;
    const hints: ReadHints = { ...MEMORY_HINTS, tailBytes: 256 };
    const small = new (class extends RecordingSource {
      override readonly hints = hints;
    })(archive);
    const r1 = await DesReader.open(small);
    expect(small.lengths).toEqual(rootLength + 128 > 256 ? [256, rootLength] : [256]);
    expect(await r1.get(name(7))).toEqual(body(7));
    const big = new (class extends RecordingSource {
      override readonly hints = hints;
    })(archive);
    await DesReader.open(big, { tailSize: 65_536 });
    expect(big.lengths).toEqual([65_536]);
  });

  it("S3 and HTTP keep one 64 KiB suffix read", () => {
    expect(REMOTE_HINTS.tailBytes).toBe(65_536);
    expect(new HttpSource("http://127.0.0.1:9/x").hints.tailBytes).toBe(65_536);
    expect(LOCAL_HINTS.tailBytes).toBe(8192);
  });
});

describe("lookups in raw page bytes", () => {
  it("a name with a lone surrogate does not find the entry its UTF-8 encoding names; names keep their own strings", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.addMany([
      ["x\ufffd", new Uint8Array([1])],
      ["\ufeffbom", new Uint8Array([2])],
      ["ok", new Uint8Array([3])],
    ]);
    await w.close();
    const reader = await DesReader.open(new MemorySource(sink.bytes()));
    expect(await reader.has("x\ufffd")).toBe(true);
    expect(await reader.has("x\ud800")).toBe(false);
    expect((await reader.stat("\ufeffbom")).name).toBe("\ufeffbom");
    expect(await reader.has("bom")).toBe(false);
    expect(await reader.get("ok")).toEqual(new Uint8Array([3]));
  });
});

describe("single lookups (lookupOne)", () => {
  const pageOf = (n: string, bits: number): number => pageOfHash(xxh64(new TextEncoder().encode(n)), bits);

  it("concurrent first gets of two names of one page read that page once; of two pages, each once", async () => {
    await loadHasher();
    const bits = parseV2Footer(archive).pageBits;
    const a = name(100);
    let same = 101;
    while (pageOf(name(same), bits) !== pageOf(a, bits)) same++;
    let other = 101;
    while (pageOf(name(other), bits) === pageOf(a, bits)) other++;
    for (const [b, pageReads] of [
      [name(same), 1],
      [name(other), 2],
    ] as const) {
      const src = new RecordingSource(archive);
      const reader = await DesReader.open(src);
      const before = src.lengths.length;
      const [ga, gb] = await Promise.all([reader.get(a), reader.get(b)]);
      expect(ga).toEqual(body(100));
      expect(gb).toEqual(b === name(same) ? body(same) : body(other));
      const reads = src.lengths.slice(before);
      expect(reads).toHaveLength(pageReads + 2);
      expect(reads.filter((n) => n === body(100).length).length).toBeGreaterThanOrEqual(1);
      expect(reader.ioStats.requests).toBe(src.lengths.length);
    }
  });

  it("has() and stat() of a cold name read its page and nothing else; a missing name is false / not found", async () => {
    const src = new RecordingSource(archive);
    const reader = await DesReader.open(src);
    const before = src.lengths.length;
    expect(await reader.has(name(4321))).toBe(true);
    expect(src.lengths.length - before).toBe(1);
    expect(await reader.has(name(4321))).toBe(true);
    expect(src.lengths.length - before).toBe(1);
    expect((await reader.stat(name(4321))).size).toBe(body(4321).length);
    expect(await reader.has("no/such/name")).toBe(false);
    await expect(reader.stat("no/such/name")).rejects.toMatchObject({ code: "DES_NOT_FOUND" });
    expect(src.lengths.length - before).toBeLessThanOrEqual(2);
  });
});

describe("sliceWant", () => {
  const group = (length: number): RangeGroup<number> => ({ offset: 1000, length, wants: [] });

  it("copies a small want out of a big read into memory of its own, exactly its bytes", () => {
    const bytes = new Uint8Array(4096).map((_, i) => i & 0xff);
    const got = sliceWant(group(4096), bytes, { offset: 1100, length: 300, item: 0 });
    expect(got.byteLength).toBe(300);
    expect(got.buffer).not.toBe(bytes.buffer);
    expect(got.buffer.byteLength).toBe(300);
    expect([...got]).toEqual([...bytes.subarray(100, 400)]);
    bytes.fill(0);
    expect(got[0]).toBe(100);
  });

  it("returns a view when the want is most of the read", () => {
    const bytes = new Uint8Array(1000).map((_, i) => i & 0xff);
    const got = sliceWant(group(1000), bytes, { offset: 1000, length: 600, item: 0 });
    expect(got.buffer).toBe(bytes.buffer);
    expect(got.byteOffset).toBe(0);
    expect(got.length).toBe(600);
  });
});

describe("Slab", () => {
  it("carves small copies from shared 64 KiB blocks, in order, and gives bigger ones their own buffer", () => {
    const slab = new Slab();
    const a = slab.take(300);
    const b = slab.take(500);
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer.byteLength).toBe(64 << 10);
    expect([a.byteOffset, b.byteOffset]).toEqual([0, 300]);
    const big = slab.take((8 << 10) + 1);
    expect(big.buffer.byteLength).toBe((8 << 10) + 1);
    // A block that cannot hold the next copy is left for a new one: no copy spans two blocks.
    const fill: Uint8Array[] = [];
    for (let used = 800; used + 8192 <= 64 << 10; used += 8192) fill.push(slab.take(8192));
    const next = slab.take(8192);
    expect(next.buffer).not.toBe(a.buffer);
    expect(next.byteOffset).toBe(0);
  });

  it("lets the small bodies of one getMany share blocks, and a reader with a content cache keep its own copy of each", async () => {
    const names = Array.from({ length: 400 }, (_, i) => name(i * 50));
    const plain = await DesReader.open(new MemorySource(archive));
    const cached = await DesReader.open(new MemorySource(archive), { contentCache: { maxBytes: 1 << 20 } });
    try {
      const got = await plain.getMany(names, { maxGap: 1 << 20 });
      const blocks = new Set([...got.values()].map((b) => b.buffer));
      expect(blocks.size).toBeLessThan(names.length / 4);
      for (const [n, b] of got) {
        expect(b.buffer.byteLength).toBeLessThanOrEqual(64 << 10);
        expect(Buffer.compare(b, body(Number(n.slice(-10, -4))))).toBe(0);
      }
      const own = await cached.getMany(names, { maxGap: 1 << 20 });
      for (const b of own.values()) expect(b.buffer.byteLength).toBe(b.byteLength);
    } finally {
      await plain.close();
      await cached.close();
    }
  });
});

describe("v2 footer decode", () => {
  it("decodes every field as the spec lays them out, and refuses a u64 field above 2^53", async () => {
    await loadHasher();
    const footerBytes = new Uint8Array(archive.subarray(archive.length - 128));
    const f = decodeV2Footer(footerBytes, archive.length);
    expect(f).toMatchObject(parseV2Footer(archive));
    const view = new DataView(footerBytes.buffer);
    expect(f.rootHash).toBe(view.getBigUint64(88, true));
    expect(f.generation).toBe(Number(view.getBigUint64(96, true)));
    for (const [at, field] of [
      [16, "data_start"],
      [64, "entry_count"],
      [80, "archive_length"],
    ] as const) {
      const bad = new Uint8Array(footerBytes);
      const v = new DataView(bad.buffer);
      v.setUint32(at + 4, 0x200000, true);
      v.setBigUint64(120, xxh64(bad.subarray(0, 120)), true);
      expect(() => decodeV2Footer(bad, archive.length)).toThrow(new RegExp(`${field} is too large`));
    }
  });
});
