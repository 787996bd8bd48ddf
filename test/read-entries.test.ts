import { describe, expect, it } from "vitest";
import { DesReader, DesWriter, MemorySink } from "../src/index.js";
import type { RangeSource, ReadHints } from "../src/index.js";
import { compareUtf8 } from "../src/read/archive-index.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Counts requests and bytes; remote-like hints so neighbouring pages coalesce. */
class CountingSource implements RangeSource {
  readonly key = "count:";
  readonly hints: ReadHints = { maxGap: 1 << 20, maxSpan: 8 << 20, concurrency: 4 };
  reads: { offset: number; length: number }[] = [];
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push({ offset, length });
    return this.bytes.slice(offset, offset + length);
  }
  async readTail(length: number): Promise<{ bytes: Uint8Array; size: number }> {
    const n = Math.min(length, this.bytes.length);
    return { bytes: this.bytes.slice(this.bytes.length - n), size: this.bytes.length };
  }
}

const N = 30_000;
const nameOf = (i: number): string => `dir${i % 7}/file-${String(i).padStart(6, "0")}.txt`;

let built: Uint8Array | undefined;
async function build(): Promise<Uint8Array> {
  if (built) return built;
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(nameOf(i), enc(`body ${i}`), i % 3 === 0 ? { meta: { i } } : {});
  });
  built = sink.bytes();
  return built;
}

describe("entries() (issue 7.17, 7.18)", () => {
  it("streams every entry's stat, each index page read once, whatever the page cache size", async () => {
    const bytes = await build();
    for (const pageCacheBytes of [0, 64 << 20]) {
      const src = new CountingSource(bytes);
      const r = await DesReader.open(src, { tailSize: 256, pageCacheBytes });
      const opened = src.reads.length;
      const seen = new Map<string, number>();
      let pageOrderOk = true;
      let prev: string | undefined;
      let pagesSeen = 0;
      for await (const st of r.entries()) {
        seen.set(st.name, st.size);
        if (prev !== undefined && compareUtf8(prev, st.name) > 0) pagesSeen++; // a new page starts
        prev = st.name;
        if (st.external || st.compression !== "none") pageOrderOk = false;
      }
      const walkReads = src.reads.length - opened;
      expect(pageOrderOk).toBe(true);
      expect(seen.size).toBe(N);
      for (let i = 0; i < N; i += 997) expect(seen.get(nameOf(i))).toBe(`body ${i}`.length);
      const report = await r.verify();
      expect(report.ok).toBe(true);
      // Each page's entries come in name order: order breaks only between pages.
      expect(pagesSeen).toBeLessThan(report.pages);
      // One coalesced read per round of 64 pages, with or without room in the page cache.
      expect(walkReads).toBe(Math.ceil(report.pages / 64));
      await r.close();
    }
  });

  it("reads each page exactly once: bytes read by the walk equal the index bytes outside the tail", async () => {
    const bytes = await build();
    const src = new CountingSource(bytes);
    const r = await DesReader.open(src, { tailSize: 256, pageCacheBytes: 0 });
    const before = src.reads.length;
    let n = 0;
    for await (const st of r.entries()) n += st.size > 0 ? 1 : 0;
    expect(n).toBe(N);
    const walkReads = src.reads.slice(before);
    const total = walkReads.reduce((s, rd) => s + rd.length, 0);
    // The index: footer says where it is; the root and footer are in the tail or read at open.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const footerAt = bytes.length - 128;
    const indexStart = Number(view.getBigUint64(footerAt + 48, true));
    const indexLength = Number(view.getBigUint64(footerAt + 56, true));
    const pageBits = bytes[footerAt + 9]!;
    const pagesBytes = indexLength - 4 * 2 ** pageBits;
    expect(total).toBe(pagesBytes);
    const offsets = walkReads.map((rd) => rd.offset);
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(Math.min(...offsets)).toBe(indexStart);
    // With 64 pages per round coalesced, rounds not pages.
    expect(walkReads.length).toBe(Math.ceil(2 ** pageBits / 64));
    await r.close();
  });

  it("list() and entries() do not evict hot pages of the page cache", async () => {
    const bytes = await build();
    const src = new CountingSource(bytes);
    // A cache of about two pages: a walk must not push out the page a hot lookup uses.
    const r = await DesReader.open(src, { tailSize: 256, pageCacheBytes: 200_000 });
    await r.get(nameOf(5));
    const warm = src.reads.length;
    await r.get(nameOf(5));
    expect(src.reads.length).toBe(warm + 1); // data only
    expect(await r.list()).toHaveLength(N);
    for await (const st of r.entries()) void st;
    const before = src.reads.length;
    await r.get(nameOf(5));
    expect(src.reads.length).toBe(before + 1); // still data only: the page stayed
    await r.close();
  });
});

describe("compareUtf8", () => {
  it("orders strings exactly as their UTF-8 bytes", () => {
    const samples = [
      "a",
      "b",
      "ab",
      "",
      "\u00e9",
      "\uffff",
      "\ue000",
      "\ud800\udc00",
      "\ud83d\ude00",
      "\ufeff",
      "z\u0000",
      "\u07ff",
      "\u0800",
    ];
    const byBytes = [...samples].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...samples].sort(compareUtf8)).toEqual(byBytes);
  });
});
