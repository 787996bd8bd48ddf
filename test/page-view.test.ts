import { beforeAll, describe, expect, it } from "vitest";
import { FLAG_COMPRESSED, FLAG_EXTERNAL, FLAG_TOMBSTONE } from "../src/format/constants.js";
import { PageView, decodePage, v2RecordLength, writeV2Record } from "../src/format/v2/page.js";
import type { V2RecordInput } from "../src/format/v2/page.js";
import type { V2Footer } from "../src/format/v2/footer.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { DesChecksumError, DesFormatError } from "../src/index.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Only pageBits and indexStart matter to a page. */
const footer = (indexStart = 1 << 20): V2Footer => ({
  pageBits: 0,
  requiredFeatures: 0,
  dataStart: 16,
  dataLength: 0,
  metaStart: 16,
  metaLength: 0,
  indexStart,
  indexLength: 0,
  entryCount: 0,
  prevFooterOffset: 0,
  archiveLength: 0,
  rootHash: 0n,
});

function record(name: string, i: number, patch: Partial<V2RecordInput> = {}): V2RecordInput {
  return {
    name: enc(name),
    flags: 0,
    codec: 0,
    size: 10 + i,
    storedSize: 10 + i,
    dataOffset: 16 + i * 100,
    dataHash: (BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn,
    externalKey: undefined,
    metaLength: i % 3 === 0 ? 0 : 5,
    metaOffset: i % 3 === 0 ? 0 : 50_000 + i * 5,
    metaHash: i % 3 === 0 ? 0n : BigInt(i + 1),
    ...patch,
  };
}

/** Records of every shape the format has, sorted by name bytes. */
function mixedRecords(n: number): V2RecordInput[] {
  const names = Array.from({ length: n }, (_, i) =>
    i % 7 === 0 ? `dir/é${i}/ü` : i % 11 === 0 ? `🙂${i}` : `item-${i}`,
  );
  const recs = names.map((name, i) => {
    if (i % 13 === 0) return record(name, i, { flags: FLAG_TOMBSTONE });
    if (i % 5 === 0) return record(name, i, { flags: FLAG_COMPRESSED, codec: 1, size: 1000 + i });
    if (i % 17 === 0) return record(name, i, { flags: FLAG_EXTERNAL, externalKey: enc(`ext/${name}`), dataOffset: 0 });
    if (i % 19 === 0) return record(name, i, { storedSize: 0, size: 0, dataOffset: 0 });
    return record(name, i);
  });
  return recs.sort((a, b) => Buffer.compare(a.name, b.name));
}

beforeAll(async () => {
  await loadHasher();
});

describe("PageView: lookup in a page's raw bytes", () => {
  it("finds every record exactly as decodePage decodes it, and nothing else", () => {
    const recs = mixedRecords(300);
    const page = encodePage(recs);
    const full = decodePage(page, 0, footer());
    const view = new PageView(page, 0, footer());
    expect(view.count).toBe(300);
    for (let i = 0; i < full.records.length; i++) expect(view.find(full.names[i]!)).toEqual(full.records[i]);
    for (const missing of ["", "a", "item-", "item-1x", "zzzz", "dir/é0", "🙂"])
      expect(view.find(enc(missing))).toBeUndefined();
  });

  it("handles an empty page and a one-record page", () => {
    const empty = new PageView(encodePage([]), 0, footer());
    expect(empty.count).toBe(0);
    expect(empty.find(enc("x"))).toBeUndefined();
    const one = new PageView(encodePage([record("only", 1)]), 0, footer());
    expect(one.find(enc("only"))?.dataOffset).toBe(116);
    expect(one.find(enc("onlz"))).toBeUndefined();
  });

  it("checks the checksum once, when the view is made", () => {
    const page = encodePage(mixedRecords(20));
    page[10]! ^= 1;
    expect(() => new PageView(page, 3, footer())).toThrow(DesChecksumError);
  });

  it("decodes only the record asked for: a bad offset in another record does not fail the lookup", () => {
    const recs = [record("a", 1), record("b", 2, { dataOffset: 5 << 20 }), record("c", 3)];
    const page = encodePage(recs);
    expect(() => decodePage(page, 0, footer())).toThrow(DesFormatError);
    const view = new PageView(page, 0, footer());
    expect(view.find(enc("a"))?.dataOffset).toBe(116);
    expect(view.find(enc("c"))?.dataOffset).toBe(316);
    expect(() => view.find(enc("b"))).toThrow(/data outside the archive/);
  });

  it("refuses a page whose names are out of order or repeated, even with a valid checksum", () => {
    for (const names of [
      ["b", "a"],
      ["a", "a"],
      ["ab", "a"],
    ]) {
      const view = new PageView(encodePage(names.map((n, i) => record(n, i))), 0, footer());
      expect(() => view.find(enc("a"))).toThrow(/not strictly ascending/);
    }
  });

  it("refuses a record count that does not fit, a truncated record and stray bytes", () => {
    const good = encodePage([record("a", 1), record("b", 2)]);
    const body = good.subarray(0, good.length - 8);
    const withCount = (count: number, bytes: Uint8Array): Uint8Array => {
      const copy = new Uint8Array(bytes);
      new DataView(copy.buffer).setUint32(0, count, true);
      return sealed(copy);
    };
    expect(() => new PageView(withCount(1000, body), 0, footer())).toThrow(/does not fit/);
    expect(() => new PageView(withCount(3, body), 0, footer()).find(enc("a"))).toThrow(DesFormatError);
    expect(() => new PageView(withCount(1, body), 0, footer()).find(enc("a"))).toThrow(/stray bytes/);
  });
});

describe("PageView: binary search and record decoding", () => {
  it("names sharing long prefixes: every name is found, and no prefix, extension or neighbour of one is", () => {
    // Seeded: names that share 0-40 leading bytes with their neighbours, as the names of one page often do.
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const stems = ["", "a", "assets/", "assets/d000/e00/", "assets/d000/e00/f000", "assets/d000/e01/"];
    const set = new Set<string>();
    while (set.size < 400) set.add(stems[rand(stems.length)]! + String(rand(5000)) + (rand(3) === 0 ? "/x" : ""));
    const names = [...set].sort((x, y) => Buffer.compare(enc(x), enc(y)));
    const recs = names.map((n, i) => record(n, i));
    const page = encodePage(recs);
    const full = decodePage(page, 0, footer());
    const view = new PageView(page, 0, footer());
    for (let i = 0; i < names.length; i++) expect(view.find(enc(names[i]!))).toEqual(full.records[i]);
    for (const n of names) {
      for (const other of [
        n.slice(0, -1),
        `${n}0`,
        `${n}\u0000`,
        n.replace(/.$/, (c) => String.fromCharCode(c.charCodeAt(0) + 1)),
      ]) {
        if (!set.has(other)) expect(view.find(enc(other))).toBeUndefined();
      }
    }
  });

  it("a varint above 2^53 in the record asked for is a DesFormatError, as in decodePage", () => {
    const recs = [record("a", 1), record("b", 2)];
    const page = encodePage(recs);
    // Rewrite b's stored_len as an 8-byte varint of 2^55 - 1 (same length as the record keeps its framing otherwise).
    const body = page.subarray(0, page.length - 8);
    const at = 4 + v2RecordLength(recs[0]!) + 3; // b's name_len, "b", flags, then stored_len (one byte: 12)
    expect(body[at]).toBe(12);
    const big = new Uint8Array(body.length + 7);
    big.set(body.subarray(0, at));
    big.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], at);
    big.set(body.subarray(at + 1), at + 8);
    const sealedPage = sealed(big);
    expect(() => decodePage(sealedPage, 0, footer())).toThrow(/too large/);
    const view = new PageView(sealedPage, 0, footer());
    expect(view.find(enc("a"))?.dataOffset).toBe(116);
    expect(() => view.find(enc("b"))).toThrow(/stored_len is too large/);
  });
});

/** One page of `records` in the given order (section 3.5): count, records, checksum. */
function encodePage(records: readonly V2RecordInput[]): Uint8Array {
  const body = new Uint8Array(4 + records.reduce((n, r) => n + v2RecordLength(r), 0));
  const view = new DataView(body.buffer);
  view.setUint32(0, records.length, true);
  let at = 4;
  for (const r of records) at = writeV2Record(body, view, at, r);
  return sealed(body);
}

/** A page body with its checksum appended. */
function sealed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 8);
  out.set(body);
  new DataView(out.buffer).setBigUint64(body.length, xxh64(body), true);
  return out;
}
