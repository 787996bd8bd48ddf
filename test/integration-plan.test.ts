import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, DesWriter, FileSource } from "../src/index.js";
import type { RangeSource } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

/** Incompressible bytes, different per entry. */
function body(i: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = i * 7919 + 1;
  for (let k = 0; k < n; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[k] = x >>> 24;
  }
  return b;
}

/** A real FileSource, with the bytes it has in flight and the longest range it was asked for. */
class Tracked implements RangeSource {
  inflight = 0;
  peak = 0;
  longest = 0;
  constructor(readonly inner: FileSource) {}
  get key(): string {
    return this.inner.key;
  }
  get size(): number {
    return this.inner.size;
  }
  get hints(): FileSource["hints"] {
    return this.inner.hints;
  }
  reset(): void {
    this.peak = 0;
    this.longest = 0;
  }
  private async track<T>(lengths: number[], run: () => Promise<T>): Promise<T> {
    const n = lengths.reduce((a, b) => a + b, 0);
    for (const l of lengths) this.longest = Math.max(this.longest, l);
    this.inflight += n;
    this.peak = Math.max(this.peak, this.inflight);
    try {
      return await run();
    } finally {
      this.inflight -= n;
    }
  }
  read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    return this.track([length], () => this.inner.read(offset, length, signal, version));
  }
  readTail(length: number, signal?: AbortSignal): ReturnType<FileSource["readTail"]> {
    return this.inner.readTail(length, signal);
  }
  readMany(
    ranges: readonly { offset: number; length: number }[],
    signal?: AbortSignal,
    version?: string,
  ): Promise<Uint8Array[]> {
    return this.track(
      ranges.map((r) => r.length),
      () => this.inner.readMany(ranges, signal, version),
    );
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const N = 300;
const sizeOf = (i: number): number => 10_000 + (i % 7) * 100;
const nameOf = (i: number): string => `e${String(i).padStart(4, "0")}`;

async function archive(): Promise<string> {
  const p = path.join(tempDir(), "plan.des");
  const w = await DesWriter.create(p);
  for (let i = 0; i < N; i++) await w.add(nameOf(i), body(i, sizeOf(i)), i % 5 === 0 ? { compress: "gzip" } : {});
  await w.close();
  return p;
}

describe("planned batches on a local file (cost model), every body right", () => {
  it("never reads a range longer than maxSpan, though the bodies of a packed archive all touch", async () => {
    const src = new Tracked(await FileSource.open(await archive()));
    const r = await DesReader.open(src);
    const names = Array.from({ length: N }, (_, i) => nameOf(i));
    for (const maxSpan of [50_000, 200_000]) {
      src.reset();
      const got = await r.getMany(names, { cost: { maxSpan } });
      expect(got.size).toBe(N);
      for (let i = 0; i < N; i++)
        expect(Buffer.from(got.get(nameOf(i))!).equals(Buffer.from(body(i, sizeOf(i))))).toBe(true);
      expect(src.longest).toBeGreaterThan(maxSpan / 2);
      expect(src.longest).toBeLessThanOrEqual(maxSpan);
    }
    await r.close();
  });

  it("keeps maxInflightBytes on the batched (readMany) path, getMany and iterMany", async () => {
    const src = new Tracked(await FileSource.open(await archive()));
    const r = await DesReader.open(src);
    const names = Array.from({ length: N }, (_, i) => nameOf(i));
    const cost = { maxInflightBytes: 100_000, maxSpan: 50_000 };
    const got = await r.getMany(names, { cost });
    for (let i = 0; i < N; i++)
      expect(Buffer.from(got.get(nameOf(i))!).equals(Buffer.from(body(i, sizeOf(i))))).toBe(true);
    expect(src.peak).toBeGreaterThan(50_000);
    expect(src.peak).toBeLessThanOrEqual(100_000);
    src.reset();
    let n = 0;
    for await (const [name, bytes] of r.iterMany(names, { cost, maxBatchBytes: 400_000 })) {
      const i = Number(name.slice(1));
      expect(Buffer.from(bytes).equals(Buffer.from(body(i, sizeOf(i))))).toBe(true);
      n++;
    }
    expect(n).toBe(N);
    expect(src.peak).toBeLessThanOrEqual(100_000);
    await r.close();
  });
});
