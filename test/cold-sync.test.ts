import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesChangedError, DesReader, DesWriter, FileSource, LOCAL_HINTS } from "../src/index.js";
import { readerOptionsToCheck } from "../src/read/options.js";
import type { ReaderOptions } from "../src/index.js";
import { parseV2Footer } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";

/** Enough records for 1,024 index pages: a 4 KiB root, which a 4 KiB tail could not hold with the footer. */
const ENTRIES = 60_000;
const name = (i: number): string => `assets/${String(i % 1000).padStart(4, "0")}/${"n".repeat(40)}-${i}.bin`;
const body = (i: number): Uint8Array => new Uint8Array(1 + (i % 7)).fill(i & 0xff);

let file: string;

beforeAll(async () => {
  file = path.join(tempDir("des-cold-sync-"), "pages.des");
  const w = await DesWriter.create(file);
  await w.addMany(Array.from({ length: ENTRIES }, (_, i) => [name(i), body(i)] as const));
  await w.close();
});

describe("local tail and synchronous reads (syncReads)", () => {
  it("the 8 KiB local tail holds the footer and a root of 1,024 pages: open is one read, a first get two more", async () => {
    const f = parseV2Footer(new Uint8Array(fs.readFileSync(file)));
    expect(f.pageBits).toBe(10);
    for (const syncReads of [false, true]) {
      const reader = await DesReader.open(file, { syncReads });
      try {
        expect(reader.ioStats).toEqual({ requests: 1, bytes: LOCAL_HINTS.tailBytes });
        expect(await reader.get(name(4242))).toEqual(body(4242));
        expect(reader.ioStats.requests).toBe(3);
        expect(reader.ioStats.bytes).toBeLessThanOrEqual(16 * 1024 + body(4242).length);
      } finally {
        await reader.close();
      }
    }
  });

  it("with syncReads, get reads the page and the body before it returns its promise; without, after", async () => {
    for (const syncReads of [true, false]) {
      const src = await FileSource.open(file, { syncReads });
      const reader = await DesReader.open(src);
      const before = src.stats.reads;
      const pending = reader.get(name(17));
      // Reads are counted when they complete.
      expect(src.stats.reads - before).toBe(syncReads ? 2 : 0);
      expect(await pending).toEqual(body(17));
      expect(src.stats.reads - before).toBe(2);
      // has() and stat() of another cold name: its page, read at once.
      const mid = src.stats.reads;
      const has = reader.has(name(30_001));
      expect(src.stats.reads - mid).toBe(syncReads ? 1 : 0);
      expect(await has).toBe(true);
      expect((await reader.stat(name(30_001))).size).toBe(body(30_001).length);
      expect(src.stats.reads - mid).toBe(1);
      await reader.close();
      await src.close();
    }
  });

  it("an aborted signal is refused before any read, as on the asynchronous path", async () => {
    const reader = await DesReader.open(file, { syncReads: true });
    try {
      const before = reader.ioStats.requests;
      const ac = new AbortController();
      ac.abort();
      await expect(reader.get(name(5), { signal: ac.signal })).rejects.toMatchObject({ code: "DES_ABORTED" });
      await expect(reader.has(name(5), { signal: ac.signal })).rejects.toMatchObject({ code: "DES_ABORTED" });
      expect(reader.ioStats.requests).toBe(before);
    } finally {
      await reader.close();
    }
  });

  it("FileSource.readSync: exact bytes with syncReads, undefined without, pinned to the version", async () => {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const sync = await FileSource.open(file, { syncReads: true });
    const plain = await FileSource.open(file);
    try {
      const { version } = await sync.readTail(64);
      expect([...sync.readSync(100, 16, version)!]).toEqual([...bytes.subarray(100, 116)]);
      expect(plain.readSync(100, 16)).toBeUndefined();
      expect(() => sync.readSync(0, 4, "0:0:0:0")).toThrow(DesChangedError);
      expect(() => sync.readSync(bytes.length - 2, 4)).toThrow(/past the end/);
    } finally {
      await sync.close();
      await plain.close();
    }
  });

  it("a file changed under a syncReads reader: the synchronous read sees the change, the reader reopens once", async () => {
    const copy = path.join(tempDir("des-cold-sync-change-"), "a.des");
    fs.copyFileSync(file, copy);
    const src = await FileSource.open(copy, { syncReads: true, checkIntervalMs: 0 });
    const reader = await DesReader.open(src, { pageCacheBytes: 0 });
    try {
      expect(await reader.get(name(1))).toEqual(body(1));
      const w = await DesWriter.create(copy, { overwrite: true });
      await w.addMany([[name(1), new Uint8Array([9, 9])]]);
      await w.close();
      const opened = reader.ioStats.requests;
      expect(await reader.get(name(1))).toEqual(new Uint8Array([9, 9]));
      // The pinned read failed before reading; the new archive is small enough to come whole with its tail.
      expect(reader.ioStats.requests - opened).toBe(1);
      expect(reader.size).toBe(fs.statSync(copy).size);
      await expect(reader.get(name(2))).rejects.toMatchObject({ code: "DES_NOT_FOUND" });
    } finally {
      await reader.close();
      await src.close();
    }
  });

  it("options checks are skipped only for {} and { syncReads: boolean }; anything else is still refused", async () => {
    expect(readerOptionsToCheck({})).toBe(false);
    expect(readerOptionsToCheck({ syncReads: true })).toBe(false);
    expect(readerOptionsToCheck({ syncReads: false })).toBe(false);
    for (const o of [{ syncReads: 1 }, { syncReads: true, tailSize: 1 }, { verify: true }, null, "x"])
      expect(readerOptionsToCheck(o as unknown as ReaderOptions)).toBe(true);
    for (const o of [{ syncReads: "yes" }, { syncReads: true, tailSize: 1 }, null])
      await expect(DesReader.open(file, o as unknown as ReaderOptions)).rejects.toMatchObject({
        code: "DES_INVALID_ARGUMENT",
      });
  });
});
