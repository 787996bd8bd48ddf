import { beforeAll, describe, expect, it } from "vitest";
import { ByteWriter } from "../src/format/bytes.js";
import { FLAG_COMPRESSED, FLAG_ENCRYPTED, FLAG_TOMBSTONE, HEADER_SIZE } from "../src/format/constants.js";
import { indexBytes, planV2Index, recordsOf, v2FooterOf } from "../src/format/v2/index-builder.js";
import { decodeV2Footer, encodeV2Footer, encodeV2Header } from "../src/format/v2/footer.js";
import type { V2RecordInput } from "../src/format/v2/page.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { DesFormatError, DesNotFoundError, DesReader, DesUnsupportedError, MemorySource } from "../src/index.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Assembles a single-page v2 archive by hand, the way the spec describes it. */
function assemble(
  records: { name: string; body?: string; flags?: number; codec?: number }[],
  footerPatch?: (f: Uint8Array) => void,
): Uint8Array {
  const w = new ByteWriter();
  w.bytes(encodeV2Header());
  const inputs: V2RecordInput[] = [];
  for (const r of records) {
    const body = enc(r.body ?? "");
    const offset = w.length;
    w.bytes(body);
    inputs.push({
      name: enc(r.name),
      flags: r.flags ?? 0,
      codec: r.codec ?? 0,
      size: body.length,
      storedSize: body.length,
      dataOffset: offset,
      dataHash: body.length ? xxh64(body) : 0n,
      externalKey: undefined,
      metaLength: 0,
      metaOffset: 0,
      metaHash: 0n,
    });
  }
  const dataLength = w.length - HEADER_SIZE;
  inputs.sort((a, b) => Buffer.compare(a.name, b.name));
  const indexStart = w.length;
  const plan = planV2Index(recordsOf(inputs));
  expect(plan.pageBits).toBe(0);
  w.bytes(indexBytes(plan));
  const footer = encodeV2Footer(
    v2FooterOf(plan, { dataStart: HEADER_SIZE, dataLength, metaStart: indexStart, metaLength: 0, indexStart }),
  );
  expect(decodeV2Footer(footer, w.length + 128)).toMatchObject({
    pageBits: 0,
    entryCount: inputs.length,
    archiveLength: w.length + 128,
    prevFooterOffset: 0,
  });
  footerPatch?.(footer);
  w.bytes(footer);
  return w.finish();
}

/** Rewrites footer bytes and fixes its checksum, to test the rules behind the checksum. */
function patchFooter(edit: (f: DataView) => void): (f: Uint8Array) => void {
  return (f) => {
    edit(new DataView(f.buffer, f.byteOffset, f.length));
    new DataView(f.buffer, f.byteOffset, f.length).setBigUint64(120, xxh64(f.subarray(0, 120)), true);
  };
}

describe("format rules a reader must follow", () => {
  beforeAll(async () => {
    await loadHasher();
  });

  it("honours tombstones: absent from has, get, stat and list, counted by verify", async () => {
    const bytes = assemble([
      { name: "live", body: "here" },
      { name: "gone", flags: FLAG_TOMBSTONE },
    ]);
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.list()).toEqual(["live"]);
    expect(await r.has("gone")).toBe(false);
    await expect(r.get("gone")).rejects.toBeInstanceOf(DesNotFoundError);
    await expect(r.stat("gone")).rejects.toBeInstanceOf(DesNotFoundError);
    expect(new TextDecoder().decode(await r.get("live"))).toBe("here");
    const report = await r.verify();
    expect(report.ok).toBe(true);
    expect(report.entries).toBe(2);
  });

  it("lists an entry with unknown flags or codec but refuses to read it", async () => {
    const bytes = assemble([
      { name: "enc", body: "secret", flags: FLAG_ENCRYPTED },
      { name: "future", body: "x", flags: 0x40 },
      { name: "zstd", body: "y", flags: FLAG_COMPRESSED, codec: 9 },
      { name: "ok", body: "fine" },
    ]);
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.list()).toEqual(["enc", "future", "ok", "zstd"]);
    for (const n of ["enc", "future", "zstd"]) await expect(r.get(n)).rejects.toBeInstanceOf(DesUnsupportedError);
    for (const n of ["enc", "future"]) await expect(r.getMeta(n)).rejects.toBeInstanceOf(DesUnsupportedError);
    expect(await r.getMeta("zstd")).toBeUndefined(); // an unknown codec concerns the body only
    expect((await r.stat("zstd")).compression).toBe("unknown");
    expect(new TextDecoder().decode(await r.get("ok"))).toBe("fine");
    const report = await r.verify();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual(["DES_UNSUPPORTED", "DES_UNSUPPORTED", "DES_UNSUPPORTED"]);
  });

  it("refuses a newer format version", async () => {
    const bytes = assemble(
      [{ name: "a", body: "1" }],
      patchFooter((f) => f.setUint8(8, 3)),
    );
    await expect(DesReader.open(new MemorySource(bytes))).rejects.toBeInstanceOf(DesUnsupportedError);
  });

  it("refuses unknown required features, ignores reserved bytes", async () => {
    const required = assemble(
      [{ name: "a", body: "1" }],
      patchFooter((f) => f.setUint32(12, 1, true)),
    );
    await expect(DesReader.open(new MemorySource(required))).rejects.toBeInstanceOf(DesUnsupportedError);
    const reserved = assemble(
      [{ name: "a", body: "1" }],
      patchFooter((f) => f.setUint8(100, 0xaa)),
    );
    const r = await DesReader.open(new MemorySource(reserved));
    expect(new TextDecoder().decode(await r.get("a"))).toBe("1");
  });

  it("verify() reports a footer entry_count that the pages do not hold", async () => {
    const bytes = assemble(
      [
        { name: "a", body: "1" },
        { name: "b", body: "2" },
      ],
      patchFooter((f) => f.setUint32(64, 3, true)),
    );
    const r = await DesReader.open(new MemorySource(bytes));
    const report = await r.verify();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual(["DES_FORMAT"]);
  });

  it("rejects a page whose record name contains NUL", async () => {
    const bytes = assemble([{ name: "a\0b", body: "1" }]);
    const r = await DesReader.open(new MemorySource(bytes));
    await expect(r.list()).rejects.toBeInstanceOf(DesFormatError);
  });

  it("detects a truncated or extended archive through archive_length", async () => {
    const bytes = assemble([{ name: "a", body: "1" }]);
    const extended = new Uint8Array(bytes.length + 1);
    extended.set(bytes);
    await expect(DesReader.open(new MemorySource(extended))).rejects.toBeInstanceOf(DesFormatError);
  });

  it("rejects names out of order or in the wrong page", async () => {
    const plan = planV2Index(
      recordsOf(
        ["a", "b"].map((n) => ({
          name: enc(n),
          flags: 0,
          codec: 0,
          size: 0,
          storedSize: 0,
          dataOffset: 16,
          dataHash: 0n,
          externalKey: undefined,
          metaLength: 0,
          metaOffset: 0,
          metaHash: 0n,
        })),
      ),
    );
    const index = indexBytes(plan);
    // The builder writes "a" then "b" (5 bytes each after the count: name_len, name, flags, stored_len, meta_len); swap them and re-seal the page.
    const pageLength = plan.pageLengths[0]!;
    expect(pageLength).toBe(4 + 10 + 8);
    expect(Array.from(index.subarray(4, 14))).toEqual([1, 0x61, 0, 0, 0, 1, 0x62, 0, 0, 0]);
    const first = index.slice(4, 9);
    index.copyWithin(4, 9, 14);
    index.set(first, 9);
    new DataView(index.buffer).setBigUint64(pageLength - 8, xxh64(index.subarray(0, pageLength - 8)), true);
    const w = new ByteWriter().bytes(encodeV2Header());
    w.bytes(index);
    w.bytes(
      encodeV2Footer({
        pageBits: 0,
        requiredFeatures: 0,
        dataStart: 16,
        dataLength: 0,
        metaStart: 16,
        metaLength: 0,
        indexStart: 16,
        indexLength: plan.indexLength,
        entryCount: 2,
        prevFooterOffset: 0,
        archiveLength: w.length + 128,
        rootHash: plan.rootHash,
      }),
    );
    const r = await DesReader.open(new MemorySource(w.finish()));
    await expect(r.list()).rejects.toBeInstanceOf(DesFormatError);
  });
});
