import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadHasher } from "../src/format/hash.js";
import { Journal, encodeRecord, scanJournal } from "../src/store/journal.js";
import { encodeHeader } from "../src/store/journal-format.js";
import type { JournalRecord } from "../src/store/journal.js";
import { groupRecords } from "../src/store/seal.js";
import { formatName, parseName, shardFromName } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

afterEach(() => vi.restoreAllMocks());

/** Appends `count` records of `size` bytes from `callers` concurrent callers; returns the payload of each. */
async function appendMany(j: Journal, count: number, size: number, callers: number): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) {
        const i = next++;
        const name = `N${String(i).padStart(6, "0")}`;
        // Every 500th record is bigger than a slab record (a buffer of its own); the rest share reused slabs.
        const data = new Uint8Array(i % 500 === 7 ? 70_000 : size).fill(i & 0xff);
        await j.appendRecord(name, i, undefined, data).durable;
        acked.set(name, i);
      }
    }),
  );
  return acked;
}

describe("journal zero reserve and record slabs", () => {
  it("is extended in the background: no synchronous write on the put path, the file stays ahead of the records, and a copy mid-run recovers every acknowledged record byte for byte (records encoded into reused slabs)", async () => {
    await loadHasher();
    const dir = tempDir("des-journal-");
    const file = path.join(dir, "j.wal");
    const j = await Journal.create(file, 1, 1, undefined, 32 << 20);
    // Created with its first reserve: the header and 4 MiB of zeros.
    expect(fs.statSync(file).size).toBe(32 + (4 << 20));
    const writeSync = vi.spyOn(fs, "writeSync");
    const acked = await appendMany(j, 3000, 4000, 32);
    // 12 MB of records: the 4 MiB reserve was extended at least twice, never with writeSync on the event loop.
    expect(writeSync).not.toHaveBeenCalled();
    expect(j.extensions).toBeGreaterThanOrEqual(2);
    await j.drain();
    const length = fs.statSync(file).size;
    expect(length).toBeGreaterThanOrEqual(j.size + (2 << 20));
    // As a kill -9 would leave it: records, then zeros.
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(j.size).every((b) => b === 0)).toBe(true);
    const scan = scanJournal(bytes, file);
    expect(scan.validLength).toBe(j.size);
    expect(scan.records.length).toBe(3000);
    for (const r of scan.records) {
      const i = acked.get(r.name)!;
      expect(r.ms).toBe(i);
      expect(r.dataLength).toBe(i % 500 === 7 ? 70_000 : 4000);
      expect(bytes.subarray(r.dataOffset, r.dataOffset + r.dataLength).every((b) => b === (i & 0xff))).toBe(true);
    }
    // Retired: the zeros are cut off.
    const size = j.size;
    j.retire();
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.statSync(file).size).toBe(size);
  });
});

describe("groupRecords (sealing a journal)", () => {
  it("groups by day and shard in order of first appearance; a name seen twice keeps its last record", () => {
    const names = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
      formatName({
        prefix: "DES",
        day: i < 4 ? "2025-01-15" : "2025-01-16",
        timestampBits: 1000 + i,
        nodeId: 3,
        seq: 0,
      }),
    );
    const rec = (name: string, k: number): JournalRecord => ({
      name,
      ms: k,
      metaOffset: 0,
      metaLength: 0,
      dataOffset: k,
      dataLength: 1,
    });
    const records = names.map((n, k) => rec(n, k));
    records.push(rec(names[1]!, 100)); // names[1] again: the later record wins
    const groups = groupRecords(records, 2);
    const expected: { day: string; shard: number; records: number[] }[] = [];
    for (const r of records) {
      if (r.name === names[1] && r.dataOffset === 1) continue;
      const day = parseName(r.name).day;
      const shard = shardFromName(r.name, 2);
      let e = expected.find((x) => x.day === day && x.shard === shard);
      if (!e) expected.push((e = { day, shard, records: [] }));
      e.records.push(r.dataOffset);
    }
    expect(groups.map((g) => ({ day: g.day, shard: g.shard, records: g.records.map((r) => r.dataOffset) }))).toEqual(
      expected,
    );
    for (const g of groups) {
      const fs_ = g.records.map((r) => parseName(r.name).f);
      expect(g.firstF).toBe(Math.min(...fs_));
      expect(g.lastF).toBe(Math.max(...fs_));
    }
    expect(groups.reduce((n, g) => n + g.records.length, 0)).toBe(8);
  });
});

describe("encodeRecord", () => {
  it("writes the ASCII name as its bytes, offsets absolute from `start`, and refuses a name that is not ASCII", async () => {
    await loadHasher();
    const data = Uint8Array.from([1, 2, 3]);
    const { bytes, rec } = encodeRecord("DES_20250115_(0000000003E8_EB)", 7, Uint8Array.from([9]), data, 1000);
    expect(bytes.toString("latin1", 14, 14 + 30)).toBe("DES_20250115_(0000000003E8_EB)");
    expect(rec).toEqual({
      name: "DES_20250115_(0000000003E8_EB)",
      ms: 7,
      metaOffset: 1000 + 48,
      metaLength: 1,
      dataOffset: 1000 + 49,
      dataLength: 3,
    });
    // At the start of a journal: the scan finds the same record.
    const first = encodeRecord(rec.name, 7, Uint8Array.from([9]), data, 32);
    const scan = scanJournal(Buffer.concat([encodeHeader(3, 1, undefined), first.bytes]), "j.wal");
    expect(scan.records).toEqual([first.rec]);
    expect(scan.validLength).toBe(32 + bytes.length);
    expect(() => encodeRecord("DES_é", 7, undefined, data, 0)).toThrow(/ASCII/);
  });
});
