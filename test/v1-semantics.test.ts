import { describe, expect, it } from "vitest";
import { DesInvalidArgumentError, DesReader, DesWriter, MemorySink, MemorySource } from "../src/index.js";

async function v1Archive(fill: (w: DesWriter) => Promise<void>): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, { format: 1 });
  await fill(w);
  await w.close();
  return sink.bytes();
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe("v1 meta uses Python's JSON", () => {
  it("stores NaN, Infinity, big integers and escapes as Python would, and reads them back exactly", async () => {
    const big = 123456789012345678901234567890n;
    const bytes = await v1Archive(async (w) => {
      await w.add("x", new Uint8Array([1]), {
        meta: { nan: Number.NaN, inf: Infinity, ninf: -Infinity, big, f: 1e-7, s: "Zażółć 🎉" },
      });
    });
    const raw = text(bytes);
    expect(raw).toContain(
      '{"nan":NaN,"inf":Infinity,"ninf":-Infinity,"big":123456789012345678901234567890,"f":1e-07,"s":"Za\\u017c\\u00f3\\u0142\\u0107 \\ud83c\\udf89","size":1}',
    );
    const r = await DesReader.open(new MemorySource(bytes));
    const meta = (await r.getMeta("x")) as Record<string, unknown>;
    expect(meta["nan"]).toBeNaN();
    expect(meta["inf"]).toBe(Infinity);
    expect(meta["ninf"]).toBe(-Infinity);
    expect(meta["big"]).toBe(big);
    expect(meta["f"]).toBe(1e-7);
    expect(meta["s"]).toBe("Zażółć 🎉");
    expect(meta["size"]).toBe(1);
  });

  it('replaces a caller\'s size key in place and stores missing meta as {"size":N}', async () => {
    const bytes = await v1Archive(async (w) => {
      await w.add("a", new Uint8Array(3), { meta: { size: 999, k: "v" } });
      await w.add("b", new Uint8Array(2));
      await w.add("c", new Uint8Array(0), { meta: {} });
    });
    const raw = text(bytes);
    expect(raw).toContain('{"size":3,"k":"v"}{"size":2}{"size":0}');
  });

  it("keeps a Map's key order exactly (plain objects put integer-like keys first)", async () => {
    const bytes = await v1Archive(async (w) => {
      await w.add("a", new Uint8Array(1), {
        meta: new Map<string, unknown>([
          ["b", 1],
          ["1", 2],
        ]),
      });
    });
    expect(text(bytes)).toContain('{"b":1,"1":2,"size":1}');
  });

  it("refuses meta that is not an object", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, { format: 1 });
    await expect(w.add("a", new Uint8Array(1), { meta: [1, 2] })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await expect(w.add("a", new Uint8Array(1), { meta: "s" })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await w.add("a", new Uint8Array(1));
    await w.close();
  });
});

describe("v1 duplicate names", () => {
  it("keeps the last record of a name, listed at the first one's position", async () => {
    const bytes = await v1Archive(async (w) => {
      await w.add("dup", new TextEncoder().encode("first"), { meta: { n: 1 } });
      await w.add("other", new TextEncoder().encode("o"));
      await w.add("dup", new TextEncoder().encode("second"), { meta: { n: 2 } });
    });
    const r = await DesReader.open(new MemorySource(bytes));
    expect(r.entryCount).toBe(2);
    expect(await r.list()).toEqual(["dup", "other"]);
    expect(text(await r.get("dup"))).toBe("second");
    expect(await r.getMeta("dup")).toEqual({ n: 2, size: 6 });
    const report = await r.verify();
    expect(report.entries).toBe(3); // every record is checked, duplicates included
    expect(report.ok).toBe(true);
  });
});

describe("v1 name rules", () => {
  it.each(["a/b", "a\\b", "c:", "s*", "q?", 'd"q', "l<", "g>", "p|"])("refuses %j", async (name) => {
    const w = await DesWriter.create(new MemorySink(), { format: 1 });
    await expect(w.add(name, new Uint8Array(1))).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await w.abort();
  });

  it("refuses compression in v1", async () => {
    await expect(DesWriter.create(new MemorySink(), { format: 1, compress: "gzip" })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
  });
});
