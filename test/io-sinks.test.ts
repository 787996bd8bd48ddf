import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesIoError, DesWriter, FileSink, MemorySink } from "../src/index.js";
import { giveWriteBuffer, takeWriteBuffer } from "../src/sinks/write-buffers.js";
import type { ByteSink } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-io-sinks-");

async function fill(sink: ByteSink & { bytesWritten: number }): Promise<number[]> {
  const seen: number[] = [sink.bytesWritten];
  const w = await DesWriter.create(sink);
  for (let i = 0; i < 40; i++) {
    await w.add(`e${i}`, new Uint8Array(i * 3000 + (i % 2 ? 300_000 : 7)).fill(i));
    seen.push(sink.bytesWritten);
  }
  await w.close();
  seen.push(sink.bytesWritten);
  return seen;
}

describe("ByteSink.bytesWritten (issue 6 item 6)", () => {
  it("FileSink counts every byte accepted, buffered or not, and ends at the file's size", async () => {
    const target = path.join(dir, "a.des");
    const sink = await FileSink.create(target);
    const seen = await fill(sink);
    expect(seen[0]).toBe(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)).toBe(fs.statSync(target).size);
    // Raw writes: small (buffered), large (direct) and retained.
    const raw = await FileSink.create(path.join(dir, "raw.bin"));
    await raw.write(new Uint8Array(10));
    expect(raw.bytesWritten).toBe(10);
    await raw.write(new Uint8Array(2 << 20));
    expect(raw.bytesWritten).toBe(10 + (2 << 20));
    await raw.writeRetained(new Uint8Array(100_000), () => undefined);
    expect(raw.bytesWritten).toBe(10 + (2 << 20) + 100_000);
    await raw.commit();
    expect(fs.statSync(path.join(dir, "raw.bin")).size).toBe(raw.bytesWritten);
  });

  it("MemorySink counts the same and ends at bytes().length", async () => {
    const sink = new MemorySink();
    const seen = await fill(sink);
    expect(seen.at(-1)).toBe(sink.bytes().length);
    expect(seen[1]!).toBeGreaterThan(0);
  });
});

describe("FileSink.writeMany", () => {
  it("writes many ranges in order with buffered writes around them, more of them than one pwritev takes", async () => {
    const target = path.join(dir, "many.des");
    const sink = await FileSink.create(target);
    const expected: Uint8Array[] = [];
    const add = (b: Uint8Array): Uint8Array => (expected.push(b), b);
    await sink.write(add(new Uint8Array(100).fill(1)));
    // 2,500 ranges (Linux takes at most 1,024 per call), empty ones among them, views at odd offsets of one buffer.
    const pool = new Uint8Array(3_000_000).map((_, i) => (i * 31 + 7) & 0xff);
    const ranges: Uint8Array[] = [];
    for (let i = 0, at = 0; i < 2500; i++) {
      const len = i % 50 === 0 ? 0 : 1 + ((i * 997) % 1200);
      ranges.push(add(pool.subarray(at, at + len)));
      at += len + 3;
    }
    await sink.writeMany(ranges);
    const total = expected.reduce((n, b) => n + b.length, 0);
    expect(sink.bytesWritten).toBe(total);
    await sink.write(add(new Uint8Array(5).fill(9)));
    await sink.writeMany([add(new Uint8Array(2_000_000).fill(4))]);
    await sink.commit();
    const file = fs.readFileSync(target);
    expect(Buffer.compare(file, Buffer.concat(expected))).toBe(0);
  });
});

describe("FileSink buffers are pooled between sinks", () => {
  const pattern = (seed: number, size: number): Uint8Array => {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7) & 0xff;
    return b;
  };
  const writeIn = async (sink: FileSink, bytes: Uint8Array, chunk: number): Promise<void> => {
    for (let at = 0; at < bytes.length; at += chunk) await sink.write(bytes.subarray(at, at + chunk));
  };

  it("sinks one after another get the same memory, never mix bytes, and a committed sink takes no more", async () => {
    const a = await FileSink.create(path.join(dir, "pool-a.bin"));
    const bytesA = pattern(1, 2_500_000); // fills the 1 MiB buffer twice: both of a sink's buffers are used
    await writeIn(a, bytesA, 40_000);
    await a.commit();
    const b = await FileSink.create(path.join(dir, "pool-b.bin"));
    const bytesB = pattern(2, 700_000);
    await writeIn(b, bytesB.subarray(0, 350_000), 10_000);
    // A late write to the committed sink would land in the buffer b now fills: it is refused instead.
    await expect(a.write(new Uint8Array(5).fill(0xee))).rejects.toBeInstanceOf(DesIoError);
    await expect(a.write(new Uint8Array(0))).rejects.toBeInstanceOf(DesIoError);
    await writeIn(b, bytesB.subarray(350_000), 10_000);
    const c = await FileSink.create(path.join(dir, "pool-c.bin"));
    await c.write(pattern(3, 1000));
    await c.abort(); // an aborted sink gives its buffer back too
    await expect(c.write(new Uint8Array(3))).rejects.toBeInstanceOf(DesIoError);
    await b.commit();
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "pool-a.bin")), Buffer.from(bytesA))).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "pool-b.bin")), Buffer.from(bytesB))).toBe(0);
    expect(fs.existsSync(path.join(dir, "pool-c.bin"))).toBe(false);
  });

  it("a write that arrives while commit runs is refused, and so is every one after it", async () => {
    const sink = await FileSink.create(path.join(dir, "pool-race.bin"));
    await sink.write(pattern(4, 5000));
    const committing = sink.commit();
    await expect(sink.write(new Uint8Array(10).fill(1))).rejects.toBeInstanceOf(DesIoError);
    await committing;
    await expect(sink.write(new Uint8Array(10).fill(2))).rejects.toBeInstanceOf(DesIoError);
    await expect(sink.writeMany([new Uint8Array(10)])).rejects.toBeInstanceOf(DesIoError);
    await expect(sink.writeRetained(new Uint8Array(100_000), () => undefined)).rejects.toBeInstanceOf(DesIoError);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "pool-race.bin")), Buffer.from(pattern(4, 5000)))).toBe(0);
  });

  it("a buffer given back is the next one taken, once", () => {
    const x = takeWriteBuffer();
    giveWriteBuffer(x);
    giveWriteBuffer(x); // twice: still one entry in the pool
    expect(takeWriteBuffer()).toBe(x);
    expect(takeWriteBuffer()).not.toBe(x);
    giveWriteBuffer(Buffer.alloc(10)); // not a write buffer: not pooled
    expect(takeWriteBuffer().length).toBe(1 << 20);
  });
});
