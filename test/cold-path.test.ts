import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader, DesWriter, HttpSource, LOCAL_HINTS, MEMORY_HINTS, REMOTE_HINTS } from "../src/index.js";
import type { ReadHints } from "../src/index.js";
import { RecordingSource, parseV2Footer } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";
import { MemorySink, MemorySource } from "../src/index.js";

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
  it("a local file reads a 4 KiB tail at open (footer and root), then exactly one page and the entry", async () => {
    const f = parseV2Footer(archive);
    expect(f.pageBits).toBeGreaterThan(0); // several pages, none inside the tail
    const reader = await DesReader.open(file);
    try {
      expect(reader.ioStats).toEqual({ requests: 1, bytes: LOCAL_HINTS.tailBytes });
      const got = await reader.get(name(12_345));
      expect(got).toEqual(body(12_345));
      const io = reader.ioStats;
      expect(io.requests).toBe(3);
      const page = io.bytes - 4096 - body(12_345).length;
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
    expect(LOCAL_HINTS.tailBytes).toBe(4096);
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
