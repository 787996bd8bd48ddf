import { beforeAll, describe, expect, it } from "vitest";
import { DesReader, DesWriter, MEMORY_HINTS, MemorySink, MemorySource } from "../src/index.js";
import type { ReadHints } from "../src/index.js";
import { REMOTE_COST } from "../src/io/cost.js";
import type { CostModel } from "../src/io/cost.js";
import { planReads } from "../src/read/plan.js";
import { decodeRoot, decodeV2Footer, rootLength, rootOffset } from "../src/format/v2/footer.js";
import { pageOfHash } from "../src/format/v2/page.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { rng } from "./helpers/data.js";

const KiB = 1024;
const N = 3000;
const name = (i: number): string => `e/${String(i).padStart(5, "0")}`;
const body = (i: number): Uint8Array => new Uint8Array(1500 + (i % 7) * 100).fill(i & 0xff);
const MODEL: CostModel = { ...REMOTE_COST, maxConcurrency: 4, maxInflightBytes: 96 * KiB };

/** A memory source that costs like a remote store to the planner and records every read. */
class Recorder extends MemorySource {
  override readonly hints: ReadHints;
  readonly ranges: { offset: number; length: number }[] = [];
  inflight = 0;
  peak = 0;
  constructor(bytes: Uint8Array, cost: CostModel) {
    super(bytes);
    this.hints = { ...MEMORY_HINTS, cost };
  }
  override async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.ranges.push({ offset, length });
    this.inflight += length;
    this.peak = Math.max(this.peak, this.inflight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.inflight -= length;
    return super.read(offset, length, signal);
  }
}

let archive: Uint8Array;
beforeAll(async () => {
  await loadHasher();
  const sink = new MemorySink();
  const w = await DesWriter.create(sink);
  await w.addMany(Array.from({ length: N }, (_, i) => [name(i), body(i)] as const));
  await w.close();
  archive = sink.bytes();
});

function pickNames(seed: number, n: number): string[] {
  const r = rng(seed);
  const s = new Set<string>();
  while (s.size < n) s.add(name(Math.floor(r() * N)));
  return [...s];
}

async function wantsOf(
  reader: DesReader,
  names: readonly string[],
): Promise<{ offset: number; length: number; item: string }[]> {
  return Promise.all(
    names.map(async (n) => {
      const st = await reader.stat(n);
      return { offset: st.offset, length: st.storedSize, item: n };
    }),
  );
}

describe("batches planned by the source's cost model", () => {
  it("reads exactly the planned groups, within the concurrency and the in-flight budget", async () => {
    const src = new Recorder(archive, MODEL);
    const reader = await DesReader.open(src);
    const names = pickNames(1, 400);
    const wants = await wantsOf(reader, names);
    src.ranges.length = 0;
    src.peak = 0;
    const got = await reader.getMany(names);
    for (const n of names) expect(got.get(n)).toEqual(body(Number(n.slice(2))));
    const plan = planReads(wants, MODEL);
    expect(src.ranges).toEqual(
      plan.groups.map((g) => ({ offset: g.offset, length: g.length })).sort((a, b) => a.offset - b.offset),
    );
    const biggest = Math.max(...plan.groups.map((g) => g.length));
    expect(src.peak).toBeLessThanOrEqual(Math.max(MODEL.maxInflightBytes, biggest));
  });

  it("a call's maxGap / maxSpan ask for the fixed rule; a call's cost overrides the model", async () => {
    const src = new Recorder(archive, MODEL);
    const reader = await DesReader.open(src);
    const names = pickNames(2, 300);
    const wants = await wantsOf(reader, names);
    src.ranges.length = 0;
    await reader.getMany(names, { maxGap: 0, maxSpan: 1 });
    expect(src.ranges.length).toBe(names.length);
    src.ranges.length = 0;
    await reader.getMany(names, { cost: { objective: "requests" } });
    const fewest = planReads(wants, { ...MODEL, objective: "requests" });
    expect(src.ranges.length).toBe(fewest.requests);
    expect(fewest.requests).toBeLessThanOrEqual(planReads(wants, MODEL).requests);
    src.ranges.length = 0;
    const slowLink: Partial<CostModel> = { linkBytesPerMs: 1000 };
    await reader.getMany(names, { cost: slowLink });
    expect(src.ranges.length).toBe(planReads(wants, { ...MODEL, ...slowLink }).requests);
  });

  it("a reader's cost option overrides the source's, and rejects nonsense", async () => {
    const src = new Recorder(archive, MODEL);
    const reader = await DesReader.open(src, {
      cost: { maxConcurrency: 1, objective: { perRequest: 1, perByte: 0, perMs: 0 } },
    });
    const names = pickNames(3, 200);
    const wants = await wantsOf(reader, names);
    src.ranges.length = 0;
    await reader.getMany(names);
    expect(src.ranges.length).toBe(
      planReads(wants, { ...MODEL, maxConcurrency: 1, objective: { perRequest: 1, perByte: 0, perMs: 0 } }).requests,
    );
    await expect(DesReader.open(src, { cost: { bytesPerMs: -1 } })).rejects.toThrow(/bytesPerMs/);
    await expect(DesReader.open(src, { cost: { requestCpuMs: -0.1 } })).rejects.toThrow(/requestCpuMs/);
    await expect(DesReader.open(src, { cost: { clientBytesPerMs: 0 } })).rejects.toThrow(/clientBytesPerMs/);
    // A per-request client cost given per call changes the plan the reader runs.
    const plain = await DesReader.open(src);
    await plain.getMetaMany(names);
    src.ranges.length = 0;
    const slow = { maxConcurrency: 64, linkBytesPerMs: 1000 };
    await plain.getMany(names, { cost: { ...slow, requestCpuMs: 50 } });
    const cpuPlan = planReads(wants, { ...MODEL, ...slow, requestCpuMs: 50 }).requests;
    expect(src.ranges.length).toBe(cpuPlan);
    expect(cpuPlan).toBeLessThan(planReads(wants, { ...MODEL, ...slow, requestCpuMs: 0 }).requests);
    await plain.close();
    // Infinity lifts the shared link of the model it overrides.
    const linked = new Recorder(archive, { ...MODEL, linkBytesPerMs: 100 });
    const unlimited = await DesReader.open(linked, { cost: { linkBytesPerMs: Infinity } });
    await unlimited.getMetaMany(names); // loads the index pages (no entry has meta)
    linked.ranges.length = 0;
    await unlimited.getMany(names);
    expect(linked.ranges.length).toBe(planReads(wants, { ...MODEL, linkBytesPerMs: Infinity }).requests);
    expect(linked.ranges.length).not.toBe(planReads(wants, { ...MODEL, linkBytesPerMs: 100 }).requests);
    await expect(DesReader.open(src, { cost: { objective: "fast" as never } })).rejects.toThrow(/objective/);
  });

  it("cold names fetch their index pages in one planned round", async () => {
    const src = new Recorder(archive, MODEL);
    const reader = await DesReader.open(src, { tailSize: 256 });
    const footer = decodeV2Footer(archive.subarray(archive.length - 128), archive.length);
    const table = decodeRoot(archive.subarray(rootOffset(footer), rootOffset(footer) + rootLength(footer)), footer);
    expect(table.lengths.length).toBeGreaterThan(2);
    const names = pickNames(4, 40);
    const pages = new Set(names.map((n) => pageOfHash(xxh64(new TextEncoder().encode(n)), footer.pageBits)));
    const wants = [...pages].map((p) => ({ offset: table.offsets[p]!, length: table.lengths[p]!, item: p }));
    src.ranges.length = 0;
    // No entry has meta: getMetaMany reads only the index pages its names need.
    const metas = await reader.getMetaMany(names);
    expect(metas.size).toBe(names.length);
    const plan = planReads(wants, MODEL);
    expect(plan.requests).toBeLessThan(pages.size);
    expect([...src.ranges].sort((a, b) => a.offset - b.offset)).toEqual(
      plan.groups.map((g) => ({ offset: g.offset, length: g.length })),
    );
  });

  it("a call's cost overrides plan its round of index pages too", async () => {
    const footer = decodeV2Footer(archive.subarray(archive.length - 128), archive.length);
    const table = decodeRoot(archive.subarray(rootOffset(footer), rootOffset(footer) + rootLength(footer)), footer);
    const names = pickNames(5, 6);
    const pages = new Set(names.map((n) => pageOfHash(xxh64(new TextEncoder().encode(n)), footer.pageBits)));
    const pageWants = [...pages].map((p) => ({ offset: table.offsets[p]!, length: table.lengths[p]!, item: p }));
    const pageReads = (src: Recorder): number => src.ranges.filter((r) => r.offset >= footer.indexStart).length;
    // A slow link makes the latency objective read pages one by one; "requests" merges them.
    const slow: Partial<CostModel> = { bytesPerMs: 50, maxConcurrency: 64 };
    for (const cost of [slow, { ...slow, objective: "requests" as const }]) {
      const src = new Recorder(archive, MODEL);
      const reader = await DesReader.open(src, { tailSize: 256 });
      src.ranges.length = 0;
      const got = await reader.getMany(names, { cost });
      expect(got.size).toBe(names.length);
      expect(pageReads(src)).toBe(planReads(pageWants, { ...MODEL, ...cost }).requests);
    }
    // The two objectives plan the pages differently, so the test tells them apart.
    expect(planReads(pageWants, { ...MODEL, ...slow, objective: "requests" }).requests).toBeLessThan(
      planReads(pageWants, { ...MODEL, ...slow }).requests,
    );
  });
});
