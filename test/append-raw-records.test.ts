import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utf8Encode } from "../src/format/bytes.js";
import { FLAG_COMPRESSED, FLAG_EXTERNAL, FLAG_TOMBSTONE, V2_FOOTER_SIZE } from "../src/format/constants.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { decodeRoot, decodeV2Footer } from "../src/format/v2/footer.js";
import type { V2Footer } from "../src/format/v2/footer.js";
import { decodePage, v2RecordLength, writeV2Record } from "../src/format/v2/page.js";
import type { V2RecordInput } from "../src/format/v2/page.js";
import { indexBytes, planV2Index, recordInputOf, recordsOf } from "../src/format/v2/index-builder.js";
import type { IndexRecordSource } from "../src/format/v2/index-builder.js";
import { rawRecords } from "../src/format/v2/raw-records.js";
import { CarriedRecords } from "../src/write/carried.js";
import { DesWriter } from "../src/index.js";

let dir = "";
beforeAll(async () => {
  await loadHasher();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "des-raw-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function rec(name: string, over: Partial<V2RecordInput> = {}): V2RecordInput {
  return {
    name: utf8Encode(name),
    flags: 0,
    codec: 0,
    size: 10,
    storedSize: 10,
    dataOffset: 16,
    dataHash: 0x0102030405060708n,
    externalKey: undefined,
    metaLength: 0,
    metaOffset: 0,
    metaHash: 0n,
    ...over,
  };
}

/** A page body (count, records) with a valid checksum after it. */
function page(records: readonly V2RecordInput[]): { bytes: Uint8Array; ends: number[] } {
  let len = 4;
  for (const r of records) len += v2RecordLength(r);
  const bytes = new Uint8Array(len + 8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, records.length, true);
  const ends: number[] = [];
  let o = 4;
  for (const r of records) ends.push((o = writeV2Record(bytes, view, o, r)));
  view.setBigUint64(len, xxh64(bytes.subarray(0, len)), true);
  return { bytes, ends };
}

const LIMIT = 1 << 20;
const footer = { pageBits: 0, indexStart: LIMIT } as V2Footer;

describe("records carried as bytes (spec 3.8.1)", () => {
  it("finds every live record of a page in this writer's form, tombstones left out", () => {
    const records = [
      rec("a"),
      rec("b/é", { flags: FLAG_COMPRESSED, codec: 1, size: 99, metaLength: 5, metaOffset: 40, metaHash: 7n }),
      rec("c", { flags: FLAG_TOMBSTONE }),
      rec("d", { flags: FLAG_EXTERNAL, externalKey: utf8Encode("s3://k"), dataOffset: 0 }),
      rec("e", { storedSize: 0, size: 0, dataOffset: 0 }),
    ];
    const { bytes, ends } = page(records);
    const r = rawRecords(bytes, bytes.length - 8, LIMIT)!;
    expect(r.count).toBe(4);
    expect(Array.from(r.start.subarray(0, r.count))).toEqual([4, ends[0], ends[2], ends[3]]);
    expect(Array.from(r.end.subarray(0, r.count))).toEqual([ends[0], ends[1], ends[3], ends[4]]);
    expect(Array.from(r.nameLen.subarray(0, r.count))).toEqual([1, 4, 1, 1]);
    expect(Array.from(r.weight.subarray(0, r.count))).toEqual([10, 15, 0, 0]);
  });

  it("refuses what decoding and encoding again would change or reject", () => {
    const body = (records: V2RecordInput[]) => page(records).bytes;
    const plain = body([rec("a"), rec("b")]);
    expect(rawRecords(plain, plain.length - 8, LIMIT)).toBeDefined();
    // A non-minimal varint: flags 0 written as 0x80 0x00.
    const nonMinimal = new Uint8Array([1, 0, 0, 0, 1, 0x61, 0x80, 0x00, 0]);
    expect(rawRecords(nonMinimal, nonMinimal.length, LIMIT)).toBeUndefined();
    const unknownCodec = body([rec("a", { flags: FLAG_COMPRESSED, codec: 0 })]);
    expect(rawRecords(unknownCodec, unknownCodec.length - 8, LIMIT)).toBeUndefined();
    const pastIndex = body([rec("a", { dataOffset: LIMIT - 5 })]);
    expect(rawRecords(pastIndex, pastIndex.length - 8, LIMIT)).toBeUndefined();
    const unordered = body([rec("b"), rec("a")]);
    expect(rawRecords(unordered, unordered.length - 8, LIMIT)).toBeUndefined();
    const badUtf8 = body([{ ...rec("a"), name: new Uint8Array([0xc3, 0x28]) }]);
    expect(rawRecords(badUtf8, badUtf8.length - 8, LIMIT)).toBeUndefined();
  });

  it("a page not in this writer's form is decoded and carried in canonical form", () => {
    // Record "a" with stored_len 10 written as 0x8a 0x00 (non-minimal), then "b" as usual.
    const b = page([rec("b")]).bytes;
    const a = [1, 0x61, 0, 0x8a, 0x00, 16, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    const len = 4 + a.length + (b.length - 12);
    const bytes = new Uint8Array(len + 8);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 2, true);
    bytes.set(a, 4);
    bytes.set(b.subarray(4, b.length - 8), 4 + a.length);
    view.setBigUint64(len, xxh64(bytes.subarray(0, len)), true);
    const carried = new CarriedRecords(0);
    carried.pushPage(bytes, footer);
    expect(carried.live).toBe(2);
    expect(carried.liveBytes).toBe(20);
    const built = indexBytes(planV2Index(carried.merged([]), { duplicates: "unique" }));
    const expected = indexBytes(planV2Index(recordsOf([rec("a"), rec("b")]), { duplicates: "unique" }));
    expect(Buffer.from(built).equals(Buffer.from(expected))).toBe(true);
  });

  it("raw records give the builder's bytes for the same records, also when it needs more page bits than the keys hold", () => {
    const records = Array.from({ length: 3000 }, (_, i) =>
      rec(`n/${i.toString(36).padStart(4, "0")}/${"x".repeat(i % 30)}`),
    );
    const encoded = records.map((r) => {
      const b = new Uint8Array(v2RecordLength(r));
      writeV2Record(b, new DataView(b.buffer), 0, r);
      return b;
    });
    // keyBits 0: the source knows no page; the builder must hash every name (the index has many pages).
    const source: IndexRecordSource = {
      count: records.length,
      keyBits: 0,
      at: () => {
        throw new Error("at() called for a raw record");
      },
      nameKey: () => 0,
      rawLength: (i) => encoded[i]!.length,
      copyRaw: (i, buf, o) => {
        buf.set(encoded[i]!, o);
        return o + encoded[i]!.length;
      },
    };
    const plan = planV2Index(source, { duplicates: "unique" });
    expect(plan.pageBits).toBeGreaterThan(0);
    const expected = indexBytes(planV2Index(recordsOf(records), { duplicates: "unique" }));
    expect(Buffer.from(indexBytes(plan)).equals(Buffer.from(expected))).toBe(true);
  });

  it("an append writes the index the builder gives for its records, byte for byte (multi-page, deletes, replacements)", async () => {
    const file = path.join(dir, "a.des");
    const names = Array.from({ length: 4000 }, (_, i) => `d${i % 17}/f${i}.bin`);
    await DesWriter.write(file, { overwrite: true }, async (w) => {
      await w.addMany(names.map((n, i) => [n, new Uint8Array([i & 255, 1, 2])] as const));
    });
    for (let g = 0; g < 2; g++) {
      const w = await DesWriter.append(file);
      for (let i = g; i < 4000; i += 97) await w.delete(names[i]!);
      await w.add(names[g + 5]!.replace("f", "g"), new Uint8Array([9]), { meta: { g } });
      await w.delete(names[g + 200]!);
      await w.add(names[g + 200]!, new Uint8Array([g, 7]));
      await w.close();
    }
    const bytes = fs.readFileSync(file);
    const f = decodeV2Footer(bytes.subarray(bytes.length - V2_FOOTER_SIZE), bytes.length);
    const index = bytes.subarray(f.indexStart, f.indexStart + f.indexLength);
    const table = decodeRoot(index.subarray(index.length - 4 * 2 ** f.pageBits), f);
    const records: V2RecordInput[] = [];
    for (let p = 0; p < table.offsets.length; p++) {
      const pg = bytes.subarray(table.offsets[p]!, table.offsets[p]! + table.lengths[p]!);
      for (const r of decodePage(pg, p, f).records) records.push(recordInputOf(r));
    }
    expect(f.pageBits).toBeGreaterThan(0);
    // Generation 3's own deletes (those of generation 2 are not carried).
    expect(records.filter((r) => r.flags & FLAG_TOMBSTONE)).toHaveLength(42);
    const expected = indexBytes(planV2Index(recordsOf(records), { duplicates: "error" }));
    expect(Buffer.from(index).equals(Buffer.from(expected))).toBe(true);
  });
});
