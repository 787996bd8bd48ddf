import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DailyShardedDesStore, DesClosedError, DesInvalidArgumentError, DesReader, parseName } from "../src/index.js";
import { blobFor, sameBytes } from "./helpers/store-data.js";
import { tempDir } from "./helpers/tmp.js";

const T = Date.UTC(2025, 0, 15, 8, 0, 0);

async function fill(store: DailyShardedDesStore, from: number, count: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const k = from + i;
      m.set(await store.put(blobFor(k), { meta: { k } }), k);
    }),
  );
  return m;
}

async function expectAll(store: DailyShardedDesStore, names: Map<string, number>): Promise<void> {
  for (const [n, k] of names) expect(sameBytes(await store.get(n), blobFor(k))).toBe(true);
}

describe("journal recovery", () => {
  it("a torn tail after the last whole record is dropped; every whole record is served and sealed", async () => {
    const dir = tempDir();
    const clock = (): number => T;
    const a = await DailyShardedDesStore.open({ location: dir, nodeId: 6, shardBits: 2, clock });
    const names = await fill(a, 0, 200);
    await a.close({ seal: false });
    const jdir = path.join(dir, "_spool", "n06");
    const journals = fs.readdirSync(jdir).filter((f) => f.endsWith(".wal"));
    expect(journals.length).toBe(1);
    const file = path.join(jdir, journals[0]!);
    const size = fs.statSync(file).size;
    // a torn record: a length field and part of a body
    fs.appendFileSync(file, Buffer.from([0x40, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5]));
    // and, separately, a flipped byte in a copy's last record is detected by its checksum
    const b = await DailyShardedDesStore.open({ location: dir, nodeId: 6, shardBits: 2, clock });
    expect(fs.existsSync(file) ? fs.statSync(file).size : size).toBeLessThanOrEqual(size);
    await expectAll(b, names);
    expect((await b.list("2025-01-15")).length).toBe(200);
    // the clock has not moved: new names continue after the recovered ones
    const more = await fill(b, 1000, 10);
    for (const n of more.keys()) expect(names.has(n)).toBe(false);
    await b.close();
    const files = fs.readdirSync(path.join(dir, "2025-01-15"));
    expect(files.length).toBe(8); // the recovered journal's 4 parts, then the second journal's
    let total = 0;
    for (const f of files) {
      const r = await DesReader.open(path.join(dir, "2025-01-15", f));
      total += r.entryCount;
      await r.close();
    }
    expect(total).toBe(210);
  });

  it("an open journal carries reserved zero bytes after its records; a copy taken mid-run recovers every acknowledged put", async () => {
    const dir = tempDir();
    const a = await DailyShardedDesStore.open({ location: dir, nodeId: 5, shardBits: 2, clock: () => T });
    const acked = await fill(a, 0, 200);
    // Concurrent callers share group commits, and the two halves of a burst overlap (two groups in flight).
    expect(a.stats.commits).toBeGreaterThanOrEqual(2);
    expect(a.stats.commits).toBeLessThan(200);
    const jdir = path.join(dir, "_spool", "n05");
    const wal = fs.readdirSync(jdir).find((f) => f.endsWith(".wal"))!;
    const bytes = fs.readFileSync(path.join(jdir, wal));
    // As a kill -9 would leave it: the file runs past the last record, all zeros.
    expect(bytes.length).toBeGreaterThan(1 << 20);
    const recordBytes = [...acked.values()].reduce((n, k) => n + blobFor(k).length, 0);
    expect(bytes.subarray(bytes.length - 4096).every((b) => b === 0)).toBe(true);
    expect(bytes.length).toBeGreaterThan(recordBytes);
    const copy = tempDir();
    fs.mkdirSync(path.join(copy, "_spool", "n05"), { recursive: true });
    fs.writeFileSync(path.join(copy, "_spool", "n05", wal), bytes);
    await a.close();
    const b = await DailyShardedDesStore.open({ location: copy, nodeId: 5, shardBits: 2, clock: () => T });
    await expectAll(b, acked);
    expect((await b.list("2025-01-15")).length).toBe(200);
    await b.close();
    // Sealed and closed: the recovered journal is gone; the new, empty one is cut back to its header.
    const left = fs.readdirSync(path.join(copy, "_spool", "n05")).filter((f) => f.endsWith(".wal"));
    expect(left).not.toContain(wal);
    for (const f of left) expect(fs.statSync(path.join(copy, "_spool", "n05", f)).size).toBe(32);
  });

  it("a record with a bad checksum ends the valid prefix", async () => {
    const dir = tempDir();
    const a = await DailyShardedDesStore.open({ location: dir, nodeId: 7, shardBits: 1, clock: () => T });
    const first = await fill(a, 0, 5);
    const lastName = await a.put(blobFor(99));
    await a.close({ seal: false });
    const jdir = path.join(dir, "_spool", "n07");
    const file = path.join(
      jdir,
      fs.readdirSync(jdir).find((f) => f.endsWith(".wal"))!,
    );
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 12] = bytes[bytes.length - 12]! ^ 0xff; // inside the last record's body
    fs.writeFileSync(file, bytes);
    const b = await DailyShardedDesStore.open({ location: dir, nodeId: 7, shardBits: 1, clock: () => T });
    await expectAll(b, first);
    expect(await b.has(lastName)).toBe(false);
    await b.close();
  });

  it("a journal of zeros only, whatever its length (its header never reached the disk), is deleted; zeros followed by data are refused and left", async () => {
    const dir = tempDir();
    const jdir = path.join(dir, "_spool", "n07");
    fs.mkdirSync(jdir, { recursive: true });
    const zeros = path.join(jdir, "000000000001.wal");
    // the size a new journal has once its header and first reserve are written
    fs.writeFileSync(zeros, Buffer.alloc(32 + (4 << 20)));
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 7, clock: () => T });
    expect(fs.existsSync(zeros)).toBe(false);
    expect(fs.readdirSync(jdir).filter((f) => f.endsWith(".wal"))).toEqual(["000000000002.wal"]);
    const n = await s.put(new Uint8Array([4, 5, 6]));
    expect([...(await s.get(n))]).toEqual([4, 5, 6]);
    await s.close();

    const other = path.join(jdir, "000000000009.wal");
    const body = Buffer.alloc(4096);
    body[100] = 1;
    fs.writeFileSync(other, body);
    const e = await DailyShardedDesStore.open({ location: dir, nodeId: 7 }).then(
      () => undefined,
      (x: unknown) => x as { code?: string },
    );
    expect(e?.code).toBe("DES_FORMAT");
    expect(fs.readFileSync(other).equals(body)).toBe(true);
  });
});

describe("rollover, compaction, options", () => {
  it("rolls over at maxEntries and maxAgeMs; compactDay merges each shard's parts into <shard>.des, atomically for a reader with an old listing", async () => {
    const dir = tempDir();
    const w = await DailyShardedDesStore.open({
      location: dir,
      nodeId: 1,
      shardBits: 2,
      maxEntries: 50,
      clock: () => T,
    });
    const names = await fill(w, 0, 180);
    await w.flush();
    expect(w.stats.sealedJournals).toBeGreaterThanOrEqual(4);
    const day = "2025-01-15";
    const before = fs.readdirSync(path.join(dir, day));
    expect(before.length).toBeGreaterThan(4);
    // a second node's reader lists the day now, before compaction
    const r = await DailyShardedDesStore.open({ location: dir, nodeId: 2, shardBits: 2, listTtlMs: 60_000 });
    await expectAll(r, names);
    const listingsBefore = r.stats.listings;
    expect(listingsBefore).toBeLessThanOrEqual(4);
    const res = await w.compactDay(day);
    expect(res).toMatchObject({ shards: 4, entries: 180 });
    expect(fs.readdirSync(path.join(dir, day)).sort()).toEqual(["0.des", "1.des", "2.des", "3.des"]);
    // the old listing names parts that are gone: the reader lists again once per shard and finds the merged parts
    await expectAll(r, names);
    expect(r.stats.listings - listingsBefore).toBeLessThanOrEqual(4);
    for (const [n, k] of [...names].slice(0, 20)) expect(await r.getMeta(n)).toEqual({ k });
    // more parts after compaction merge into the existing single part
    const later = await fill(w, 500, 30);
    await w.compactDay(day);
    expect(fs.readdirSync(path.join(dir, day)).length).toBe(4);
    await expectAll(w, new Map([...names, ...later]));
    expect((await w.list(day)).length).toBe(210);
    await r.close();
    await w.close();

    const aged = await DailyShardedDesStore.open({ location: dir, nodeId: 3, shardBits: 2, maxAgeMs: 100 });
    await aged.put(blobFor(1));
    for (let i = 0; i < 60 && aged.stats.sealedJournals === 0; i++) await new Promise((res2) => setTimeout(res2, 50));
    expect(aged.stats.sealedJournals).toBe(1);
    await aged.close();
  });

  it("the packer layout writes <day>/shard_NN parts and compacts to shard_NN.des", async () => {
    const dir = tempDir();
    const s = await DailyShardedDesStore.open({
      location: dir,
      nodeId: 1,
      shardBits: 3,
      layout: "packer",
      clock: () => T,
    });
    const names = await fill(s, 0, 100);
    await s.flush();
    for (const f of fs.readdirSync(path.join(dir, "2025-01-15")))
      expect(f).toMatch(/^shard_0[0-7]\.n01-[0-9A-F]{12}-[0-9A-F]{12}\.des$/);
    await s.compactDay("2025-01-15");
    expect(fs.readdirSync(path.join(dir, "2025-01-15")).sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => `shard_0${i}.des`),
    );
    await expectAll(s, names);
    await s.close();
  });

  it("backpressure: the queue for the disk stays within maxQueuedBytes plus one record however many callers pile up", async () => {
    const dir = tempDir();
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 1, maxQueuedBytes: 64 << 10 });
    const body = new Uint8Array(4096).fill(3);
    const names = await Promise.all(Array.from({ length: 2000 }, () => s.put(body)));
    expect(new Set(names).size).toBe(2000);
    expect(s.stats.peakQueuedBytes).toBeLessThanOrEqual((64 << 10) + 4096 + 128);
    expect(s.stats.peakQueuedBytes).toBeGreaterThan(16 << 10);
    expect(sameBytes(await s.get(names[1999]!), body)).toBe(true);
    await s.close();
  });

  it("checks its options and refuses use after close", async () => {
    const dir = tempDir();
    await expect(DailyShardedDesStore.open({ location: dir, nodeId: 1, wrapBits: 10 })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    await expect(DailyShardedDesStore.open({ location: dir, nodeId: 256 })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    await expect(DailyShardedDesStore.open({ location: dir, nodeId: 1, shardBits: 33 })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    await expect(
      DailyShardedDesStore.open({ location: dir, nodeId: 1, shardBits: 9, layout: "packer" }),
    ).rejects.toBeInstanceOf(DesInvalidArgumentError);
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 1, day: () => "2031-03-04" });
    const n = await s.put(new Uint8Array([1, 2, 3]), { day: "2030-01-02" });
    expect(parseName(n).day).toBe("2030-01-02");
    expect(parseName(await s.put(new Uint8Array(0))).day).toBe("2031-03-04");
    await expect(s.put("text" as unknown as Uint8Array)).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await s.close();
    await expect(s.put(new Uint8Array(1))).rejects.toBeInstanceOf(DesClosedError);
    await expect(s.get(n)).rejects.toBeInstanceOf(DesClosedError);
  });
});
