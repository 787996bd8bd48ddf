/**
 * liveRecordBatches: what repack and merge walk. A batch per index page
 * (one async step per page, not per record), the same records as the
 * per-record liveRecords, tombstones and replaced records left out.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, DesWriter } from "../src/index.js";
import { liveRecordBatches, liveRecords } from "../src/read/generations.js";
import { openForCopy } from "../src/write/repack.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-live-records-");

describe("liveRecordBatches", () => {
  it("gives one batch per index page with the live records of the newest generation, as liveRecords does one by one", async () => {
    const file = path.join(dir, "gens.des");
    await DesWriter.write(file, {}, async (w) => {
      for (let i = 0; i < 6000; i++) await w.add(`d${i % 13}/file-${i}.txt`, new TextEncoder().encode(`body ${i}`));
    });
    const a = await DesWriter.append(file);
    for (let i = 0; i < 6000; i += 7) await a.delete(`d${i % 13}/file-${i}.txt`);
    await a.add("d0/file-14.txt", new TextEncoder().encode("replaced")); // deleted above, added again
    await a.add("new/entry", new TextEncoder().encode("new"));
    await a.close();

    const reader = await DesReader.open(file);
    const expected = (await reader.list()).sort();
    await reader.close();

    const { opened, close } = await openForCopy(file);
    try {
      const batches: (readonly { name: string }[])[] = [];
      for await (const b of liveRecordBatches(opened.index, undefined, opened)) batches.push(b);
      const pageCount = 2 ** opened.footer!.pageBits;
      expect(pageCount).toBeGreaterThan(1);
      expect(batches.length).toBeLessThanOrEqual(pageCount);
      expect(batches.length).toBeGreaterThan(pageCount / 2);
      const names = batches.flatMap((b) => b.map((r) => r.name));
      expect(names.length).toBe(expected.length);
      expect([...names].sort()).toEqual(expected);
      expect(names).toContain("d0/file-14.txt");
      expect(names).not.toContain("d0/file-7.txt");
      const one: string[] = [];
      for await (const r of liveRecords(opened.index, undefined, opened)) one.push(r.name);
      expect(one).toEqual(names);
    } finally {
      await close();
    }
  });
});
