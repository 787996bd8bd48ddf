import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DesAbortedError,
  DesChangedError,
  DesClosedError,
  DesNotFoundError,
  DesReader,
  DesWriter,
  MemorySink,
  MemorySource,
  coalesceRanges,
} from "../src/index.js";
import type { RangeSource, ReadHints } from "../src/index.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function build(
  n: number,
  body: (i: number) => Uint8Array,
  opts: { compress?: "gzip" } = {},
): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, opts);
  for (let i = 0; i < n; i++) await w.add(`e${String(i).padStart(6, "0")}`, body(i), { meta: { i } });
  await w.close();
  return sink.bytes();
}

/** A memory source with remote-like hints that records every read. */
class CountingSource implements RangeSource {
  readonly key = "counting:";
  readonly reads: { offset: number; length: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private bytes: Uint8Array,
    readonly hints: ReadHints,
    private readonly delayMs = 0,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.reads.push({ offset, length });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (signal?.aborted) throw new DesAbortedError();
      return this.bytes.subarray(offset, offset + length);
    } finally {
      this.inFlight--;
    }
  }
  async readTail(length: number): Promise<{ bytes: Uint8Array; size: number }> {
    const n = Math.min(length, this.bytes.length);
    this.reads.push({ offset: this.bytes.length - n, length: n });
    return { bytes: this.bytes.subarray(this.bytes.length - n), size: this.bytes.length };
  }
}

describe("getMany coalescing", () => {
  it("costs exactly the groups the coalescing rule gives, with bounded concurrency", async () => {
    const bytes = await build(5000, (i) => new Uint8Array(100 + (i % 900)).fill(i & 255));
    const hints = { maxGap: 20_000, maxSpan: 200_000, concurrency: 3 };
    const src = new CountingSource(bytes, hints, 2);
    const r = await DesReader.open(src, { tailSize: 4096 });
    const names = Array.from({ length: 400 }, (_, k) => `e${String((k * 7919) % 5000).padStart(6, "0")}`);
    // Warm the index so only data reads remain to count.
    const stats = await Promise.all(names.map((n) => r.stat(n)));
    const expected = coalesceRanges(
      stats.map((s) => ({ offset: s.offset, length: s.storedSize, item: s.name })),
      hints.maxGap,
      hints.maxSpan,
    );
    src.reads.length = 0;
    src.maxInFlight = 0;
    const got = await r.getMany(names);
    expect(src.reads.length).toBe(expected.length);
    expect(src.reads.every((x) => x.length <= hints.maxSpan)).toBe(true);
    expect(src.maxInFlight).toBeLessThanOrEqual(3);
    expect([...got.keys()]).toEqual(names);
    for (const n of names) {
      const i = Number(n.slice(1));
      expect(got.get(n)!.length).toBe(100 + (i % 900));
      expect(got.get(n)!.every((b) => b === (i & 255))).toBe(true);
    }
  });

  it("merges neighbours into one read when the span allows, and splits past maxSpan", async () => {
    const bytes = await build(100, () => new Uint8Array(1000).fill(7));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 10_000, concurrency: 4 }, 0);
    const r = await DesReader.open(src, { tailSize: 256 });
    const names = Array.from({ length: 100 }, (_, i) => `e${String(i).padStart(6, "0")}`);
    await r.list();
    src.reads.length = 0;
    await r.getMany(names);
    expect(src.reads.length).toBe(10); // 100 KB of adjacent bodies in 10 KB spans
  });

  it("fails on a missing name before reading any data, or skips it when asked", async () => {
    const bytes = await build(50, (i) => enc(`body ${i}`));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 1 << 20, concurrency: 4 });
    const r = await DesReader.open(src, { tailSize: 256 });
    await r.list();
    src.reads.length = 0;
    await expect(r.getMany(["e000001", "nope"])).rejects.toBeInstanceOf(DesNotFoundError);
    expect(src.reads.length).toBe(0);
    const got = await r.getMany(["e000001", "nope"], { missing: "skip" });
    expect([...got.keys()]).toEqual(["e000001"]);
    await expect(r.get("nope")).rejects.toMatchObject({ code: "DES_NOT_FOUND", entryName: "nope" });
    expect(await r.has("nope")).toBe(false);
    expect(await r.has("e000049")).toBe(true);
  });

  it("honours an AbortSignal", async () => {
    const bytes = await build(200, () => new Uint8Array(5000));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 5000, concurrency: 2 }, 20);
    const r = await DesReader.open(src, { tailSize: 256 });
    await r.list();
    const ac = new AbortController();
    const names = Array.from({ length: 200 }, (_, i) => `e${String(i).padStart(6, "0")}`);
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    await expect(r.getMany(names, { signal: ac.signal })).rejects.toBeInstanceOf(DesAbortedError);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(src.reads.length).toBeLessThan(50);
  });

  it("iterMany yields entries as their reads arrive", async () => {
    const bytes = await build(20, (i) => new Uint8Array(10_000).fill(i));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 10_000, concurrency: 1 }, 5);
    const r = await DesReader.open(src, { tailSize: 256 });
    const names = Array.from({ length: 20 }, (_, i) => `e${String(i).padStart(6, "0")}`);
    const seen: number[] = [];
    for await (const [name, body] of r.iterMany(names)) {
      seen.push(src.reads.length);
      expect(body[0]).toBe(Number(name.slice(1)));
    }
    // With one read in flight, each entry arrives after its own read, not all at the end.
    expect(new Set(seen).size).toBeGreaterThan(10);
  });

  it("leaving an iterMany loop early cancels the reads still to come", async () => {
    const bytes = await build(200, () => new Uint8Array(5000).fill(3));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 5000, concurrency: 2 }, 5);
    const r = await DesReader.open(src, { tailSize: 256 });
    await r.list();
    src.reads.length = 0;
    const names = Array.from({ length: 200 }, (_, i) => `e${String(i).padStart(6, "0")}`);
    let seen = 0;
    for await (const [, body] of r.iterMany(names)) {
      expect(body.length).toBe(5000);
      if (++seen === 3) break;
    }
    const after = src.reads.length;
    await new Promise((res) => setTimeout(res, 50));
    expect(src.reads.length).toBe(after);
    expect(after).toBeLessThan(20);
    expect(src.inFlight).toBe(0);
  });

  it("shares one read between identical concurrent requests", async () => {
    const bytes = await build(10, () => new Uint8Array(3000).fill(1));
    const src = new CountingSource(bytes, { maxGap: 0, maxSpan: 1 << 20, concurrency: 4 }, 10);
    const r = await DesReader.open(src, { tailSize: 256 });
    await r.stat("e000003");
    src.reads.length = 0;
    await Promise.all([r.get("e000003"), r.get("e000003"), r.get("e000003")]);
    expect(src.reads.length).toBe(1);
  });
});

describe("meta, stream, close", () => {
  it("getMetaMany batches meta reads and returns undefined for entries without meta", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.add("with", enc("a"), { meta: { tags: ["x"], n: 2n ** 60n, bin: new Uint8Array([1, 2]) } });
    await w.add("without", enc("b"));
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    const metas = await r.getMetaMany(["with", "without"]);
    expect(metas.get("with")).toEqual({ tags: ["x"], n: 2n ** 60n, bin: new Uint8Array([1, 2]) });
    expect(metas.has("without")).toBe(true);
    expect(metas.get("without")).toBeUndefined();
  });

  it("streams a big compressed entry and matches get()", async () => {
    const body = new Uint8Array(20 << 20).map((_, i) => (i * 31) & 0xff);
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.add("big", Readable.from([body.subarray(0, 7 << 20), body.subarray(7 << 20)]), { compress: "gzip" });
    await w.add("plain", body);
    await w.close();
    const src = new MemorySource(sink.bytes());
    const r = await DesReader.open(src);
    for (const name of ["big", "plain"]) {
      const chunks: Buffer[] = [];
      for await (const c of r.stream(name)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(Buffer.from(body))).toBe(true);
    }
    const readsBefore = src.stats.reads;
    for await (const _ of r.stream("plain")) void _;
    expect(src.stats.reads - readsBefore).toBe(3); // 20 MiB in 8 MiB windows
  });

  it("a closed reader refuses work", async () => {
    const r = await DesReader.open(new MemorySource(await build(1, () => enc("x"))));
    await r.close();
    await expect(r.get("e000000")).rejects.toBeInstanceOf(DesClosedError);
  });
});

/** A source whose object can be replaced; pinned reads fail like S3's 412. */
class SwappableSource implements RangeSource {
  readonly key = "swap:";
  readonly hints = { maxGap: 0, maxSpan: 1 << 20, concurrency: 4 };
  private version = 0;
  private pinned = -1;
  tails = 0;
  constructor(private bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  replace(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.version++;
  }
  async readTail(length: number): Promise<{ bytes: Uint8Array; size: number }> {
    this.tails++;
    this.pinned = this.version;
    const n = Math.min(length, this.bytes.length);
    return { bytes: this.bytes.subarray(this.bytes.length - n), size: this.bytes.length };
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.pinned !== this.version) throw new DesChangedError("precondition failed");
    return this.bytes.subarray(offset, offset + length);
  }
}

describe("an archive replaced under the reader", () => {
  it("reopens once and serves the new content", async () => {
    const a = await build(3000, (i) => enc(`old ${i}`));
    const b = await build(3000, (i) => enc(`new ${i} and longer`));
    const src = new SwappableSource(a);
    const r = await DesReader.open(src, { tailSize: 256 });
    expect(new TextDecoder().decode(await r.get("e000010"))).toBe("old 10");
    src.replace(b);
    expect(new TextDecoder().decode(await r.get("e000011"))).toBe("new 11 and longer");
    expect(src.tails).toBe(2);
    src.replace(a);
    const many = await r.getMany(["e000001", "e002999"]);
    expect(new TextDecoder().decode(many.get("e002999")!)).toBe("old 2999");
    expect(await r.getMeta("e000005")).toEqual({ i: 5 });
  });

  it("a second change during the retry is a DesChangedError", async () => {
    const a = await build(3000, (i) => enc(`old ${i}`));
    const src = new SwappableSource(a);
    const r = await DesReader.open(src, { tailSize: 256 });
    const original = src.readTail.bind(src);
    src.readTail = async (n: number) => {
      const t = await original(n);
      src.replace(a); // changes again right after every reopen
      return t;
    };
    src.replace(a);
    await expect(r.get("e000100")).rejects.toBeInstanceOf(DesChangedError);
  });
});

describe("maxEntryBytes", () => {
  it("refuses to hold an entry above the limit in memory, and verify() streams it instead", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.add("big", new Uint8Array(300_000).fill(5), { compress: "gzip", meta: { k: 1 } });
    await w.add("small", enc("ok"));
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()), { maxEntryBytes: 100_000 });
    await expect(r.get("big")).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    await expect(r.getMany(["small", "big"])).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    expect(new TextDecoder().decode(await r.get("small"))).toBe("ok");
    let n = 0;
    for await (const c of r.stream("big")) n += (c as Uint8Array).length;
    expect(n).toBe(300_000);
    const report = await r.verify();
    expect(report.problems).toEqual([]);
    expect(report.dataChecked).toBe(2);
    expect(report.metaChecked).toBe(1);
    // A flipped byte inside the streamed entry is still caught.
    const damaged = new Uint8Array(sink.bytes());
    const at = (await r.stat("big")).offset + 20;
    damaged[at] = damaged[at]! ^ 0x01;
    const bad = await (await DesReader.open(new MemorySource(damaged), { maxEntryBytes: 100_000 })).verify();
    expect(bad.ok).toBe(false);
    expect(bad.problems.map((p) => [p.name, p.code])).toEqual([["big", "DES_CHECKSUM"]]);
  });
});
