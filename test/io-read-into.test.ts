import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, DesWriter, FileSource, repack } from "../src/index.js";
import { readInto } from "../src/io/source.js";
import type { RangeSource } from "../src/io/source.js";
import { Fetcher } from "../src/read/fetcher.js";
import { PrefixSource } from "../src/read/prefix.js";
import { MemorySource } from "../src/sources/memory.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-read-into-");
const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 0xff);
const file = path.join(dir, "b.bin");
fs.writeFileSync(file, bytes);

describe("readInto: reads into the caller's memory", () => {
  it("FileSource.readInto fills a view inside a larger buffer, thread pool and syncReads alike, and counts the read", async () => {
    for (const syncReads of [false, true]) {
      const src = await FileSource.open(file, { syncReads });
      const big = new Uint8Array(10_000).fill(0xee);
      const view = big.subarray(100, 5100);
      await src.readInto(60_000, view);
      expect(Buffer.from(view).equals(Buffer.from(bytes.subarray(60_000, 65_000)))).toBe(true);
      expect(big[99]).toBe(0xee);
      expect(big[5100]).toBe(0xee);
      expect(src.stats.reads).toBe(1);
      expect(src.stats.bytesRead).toBe(5000);
      await expect(src.readInto(69_000, new Uint8Array(2000))).rejects.toMatchObject({ code: "DES_FORMAT" });
      await src.close();
    }
  });

  it("a source without readInto is read with read and one copy; a short answer is DES_IO", async () => {
    const mem = new MemorySource(bytes);
    expect((mem as RangeSource).readInto).toBeUndefined();
    const t = new Uint8Array(300);
    await readInto(mem, 1234, t);
    expect(Buffer.from(t).equals(Buffer.from(bytes.subarray(1234, 1534)))).toBe(true);
    const short: RangeSource = {
      key: "short",
      size: 100,
      hints: mem.hints,
      read: async () => new Uint8Array(3),
      readTail: async () => ({ bytes: new Uint8Array(0), size: 100 }),
    };
    await expect(readInto(short, 0, new Uint8Array(10))).rejects.toMatchObject({ code: "DES_IO" });
  });

  it("PrefixSource checks its own end, then reads through to the inner source's readInto", async () => {
    const src = await FileSource.open(file);
    const pre = new PrefixSource(src, 1000);
    const t = new Uint8Array(100);
    await pre.readInto(900, t);
    expect(Buffer.from(t).equals(Buffer.from(bytes.subarray(900, 1000)))).toBe(true);
    expect(src.stats.reads).toBe(1);
    await expect(pre.readInto(950, new Uint8Array(100))).rejects.toMatchObject({ code: "DES_FORMAT" });
    await src.close();
  });

  it("Fetcher.readInto serves ranges inside the tail without a request and counts the others", async () => {
    const src = await FileSource.open(file);
    const f = new Fetcher(src, src.hints);
    f.adopt(await f.readTail(4096));
    expect(f.stats.requests).toBe(1);
    const t = new Uint8Array(50);
    await f.readInto(bytes.length - 100, t);
    expect(Buffer.from(t).equals(Buffer.from(bytes.subarray(bytes.length - 100, bytes.length - 50)))).toBe(true);
    expect(f.stats.requests).toBe(1);
    await f.readInto(10, t);
    expect(Buffer.from(t).equals(Buffer.from(bytes.subarray(10, 60)))).toBe(true);
    expect(f.stats).toEqual({ requests: 2, bytes: 4096 + 50 });
    await src.close();
  });
});

describe("repack reads batches into two reused buffers", () => {
  it("with batches far smaller than the archive (each buffer reused many times), every kept body and meta is copied exactly", async () => {
    const src = path.join(dir, "src.des");
    const body = (i: number): Uint8Array =>
      Uint8Array.from({ length: 500 + ((i * 97) % 3000) }, (_, k) => (i + k * 13) & 0xff);
    await DesWriter.write(src, {}, async (w) => {
      for (let i = 0; i < 300; i++)
        await w.add(`f${String(i).padStart(4, "0")}`, body(i), i % 7 === 0 ? { meta: { i } } : {});
    });
    const out = path.join(dir, "half.des");
    const rep = await repack(src, out, { filter: (e) => Number(e.name.slice(1)) % 3 !== 1, batchBytes: 8192 });
    expect(rep.added).toBe(200);
    expect(rep.deleted).toBe(100);
    const r = await DesReader.open(out);
    const names = await r.list();
    expect(names.length).toBe(200);
    const got = await r.getMany(names);
    for (const n of names) {
      const i = Number(n.slice(1));
      expect(i % 3).not.toBe(1);
      expect(Buffer.from(got.get(n)!).equals(Buffer.from(body(i)))).toBe(true);
      expect(await r.getMeta(n)).toEqual(i % 7 === 0 ? { i } : undefined);
    }
    await r.close();
  });
});
