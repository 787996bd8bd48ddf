import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DesDuplicateError,
  DesNotFoundError,
  DesReader,
  DesUnsupportedError,
  DesWriter,
  merge,
  repack,
} from "../src/index.js";
import { bodyOf } from "./helpers/data.js";
import { tempDir } from "./helpers/tmp.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function everything(file: string, generation?: number): Promise<Map<string, string>> {
  const r = await DesReader.open(file, generation === undefined ? {} : { generation });
  try {
    const m = await r.getMany(await r.list());
    return new Map([...m].map(([k, v]) => [k, dec(v)]));
  } finally {
    await r.close();
  }
}

describe("DesWriter.append", () => {
  const dir = tempDir("des-append-api-");

  async function base(name: string, n = 20): Promise<string> {
    const file = path.join(dir, name);
    await DesWriter.write(file, {}, async (w) => {
      for (let i = 0; i < n; i++) await w.add(`e${i}`, enc(`v${i}`), { meta: { i } });
    });
    return file;
  }

  it("adds, deletes and replaces in one generation; the old generation stays readable", async () => {
    const file = await base("g.des");
    const size1 = fs.statSync(file).size;
    const w = await DesWriter.append(file);
    expect(w.generation).toBe(2);
    await w.add("new", enc("fresh"), { meta: { tag: "n" } });
    await w.delete("e1");
    await w.delete("e2");
    await w.add("e2", enc("second"), { compress: "brotli" });
    await w.add("streamed", Readable.from([enc("a"), enc("b"), enc("c")]), { compress: "gzip" });
    fs.writeFileSync(path.join(dir, "body.txt"), "from disk");
    await w.add("file", { path: path.join(dir, "body.txt") });
    const report = await w.close();
    expect(report).toMatchObject({
      generation: 2,
      added: 4,
      deleted: 2,
      entries: 22,
      archiveBytes: fs.statSync(file).size,
    });
    expect(report.bytesWritten).toBe(fs.statSync(file).size - size1);

    const now = await everything(file);
    expect(now.size).toBe(22);
    expect(now.has("e1")).toBe(false);
    expect(now.get("e2")).toBe("second");
    expect(now.get("streamed")).toBe("abc");
    expect(now.get("file")).toBe("from disk");
    const r = await DesReader.open(file);
    expect(r.generation).toBe(2);
    expect(await r.getMeta("new")).toEqual({ tag: "n" });
    expect(await r.getMeta("e5")).toEqual({ i: 5 });
    expect(await r.getMeta("e2")).toBeUndefined();
    expect((await r.stat("e2")).compression).toBe("brotli");
    const v = await r.verify();
    expect(v.ok).toBe(true);
    // 20 old - 2 deleted + 4 added records, plus one tombstone (e1; e2 was replaced, so it has a record).
    expect(v.entries).toBe(23);
    const gens = await r.generations();
    expect(gens.map((g) => [g.generation, g.archiveLength, g.records])).toEqual([
      [1, size1, 20],
      [2, report.archiveBytes, 23],
    ]);
    expect(gens[1]!.footerOffset).toBe(report.archiveBytes - 128);
    expect(gens[0]!.bytes + gens[1]!.bytes).toBe(report.archiveBytes);
    await r.close();

    const old = await everything(file, 1);
    expect(old.size).toBe(20);
    expect(old.get("e1")).toBe("v1");
    expect(old.get("e2")).toBe("v2");
    const r1 = await DesReader.open(file, { generation: 1 });
    expect(r1.generation).toBe(1);
    expect(r1.size).toBe(size1);
    expect((await r1.verify()).ok).toBe(true);
    await r1.close();
    await expect(DesReader.open(file, { generation: 3 })).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
  });

  it("a multi-page index: every name lands in its page, in order, deletes and replacements included", async () => {
    const file = path.join(dir, "pages.des");
    const model = new Map<string, string>();
    await DesWriter.write(file, {}, async (w) => {
      for (let i = 0; i < 6000; i++) {
        const name = `some/longer/path/${String(i).padStart(5, "0")}/${"x".repeat(i % 40)}`;
        model.set(name, `v${i}`);
        await w.add(name, enc(`v${i}`));
      }
    });
    const before = await DesReader.open(file);
    const pages1 = (await before.verify()).pages;
    expect(pages1).toBeGreaterThan(4);
    await before.close();
    const w = await DesWriter.append(file);
    const names = [...model.keys()];
    for (let i = 0; i < names.length; i += 7) {
      await w.delete(names[i]!);
      model.delete(names[i]!);
    }
    for (let i = 3; i < names.length; i += 11) {
      if (!model.has(names[i]!)) continue;
      await w.delete(names[i]!);
      await w.add(names[i]!, enc(`r${i}`));
      model.set(names[i]!, `r${i}`);
    }
    for (let i = 0; i < 700; i++) {
      await w.add(`new/${i}`, enc(`n${i}`));
      model.set(`new/${i}`, `n${i}`);
    }
    await w.close();
    const r = await DesReader.open(file);
    const v = await r.verify();
    expect(v.ok).toBe(true);
    expect(v.pages).toBe(pages1);
    expect(await everything(file)).toEqual(model);
    for (let i = 0; i < names.length; i += 7) expect(await r.has(names[i]!)).toBe(false);
    await r.close();
  });

  it("refuses duplicates, unknown deletes, and names the format rules", async () => {
    const file = await base("rules.des");
    const w = await DesWriter.append(file);
    await expect(w.add("e3", enc("x"))).rejects.toBeInstanceOf(DesDuplicateError);
    await expect(w.delete("nope")).rejects.toBeInstanceOf(DesNotFoundError);
    await expect(w.add("", enc("x"))).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    await expect(w.add("a\0b", enc("x"))).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    await expect(w.add("z", enc("x"), { compress: "zstd" as "gzip" })).rejects.toMatchObject({
      code: "DES_INVALID_ARGUMENT",
    });
    await expect(w.add("z", 42 as unknown as Uint8Array)).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    // Added then deleted in the same generation: gone, nothing else changes.
    await w.add("temp", enc("t"));
    await w.delete("temp");
    await expect(w.add("temp", enc("t2"))).resolves.toBeUndefined();
    // Old entry deleted, re-added, deleted again: a tombstone remains.
    await w.delete("e4");
    await w.add("e4", enc("again"));
    await w.delete("e4");
    const report = await w.close();
    expect(report).toMatchObject({ added: 1, deleted: 1, entries: 20 });
    const now = await everything(file);
    expect(now.get("temp")).toBe("t2");
    expect(now.has("e4")).toBe(false);
  });

  it("refuses a v1 archive with DES_UNSUPPORTED naming repack --format 2", async () => {
    const file = path.join(dir, "v1.des");
    await DesWriter.write(file, { format: 1 }, async (w) => w.add("a", enc("1")));
    const before = fs.readFileSync(file);
    const err = await DesWriter.append(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DesUnsupportedError);
    expect((err as Error).message).toContain("repack --format 2");
    expect(Buffer.compare(fs.readFileSync(file), before)).toBe(0);
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
    // The conversion it names works, and the result takes appends.
    const v2 = path.join(dir, "v1-as-v2.des");
    const rep = await repack(file, v2, { format: 2 });
    expect(rep.added).toBe(1);
    const w = await DesWriter.append(v2);
    await w.add("b", enc("2"));
    await w.close();
    expect(await everything(v2)).toEqual(
      new Map([
        ["a", "1"],
        ["b", "2"],
      ]),
    );
  });

  it("reports live and dead bytes exactly", async () => {
    const file = path.join(dir, "space.des");
    await DesWriter.write(file, {}, async (w) => {
      for (let i = 0; i < 10; i++) await w.add(`x${i}`, bodyOf(i, 1000));
    });
    const r0 = await DesReader.open(file);
    const u0 = await r0.spaceUsage();
    expect(u0).toMatchObject({
      generations: 1,
      liveEntries: 10,
      tombstones: 0,
      liveDataBytes: 10_000,
      reclaimableBytes: 0,
    });
    expect(u0.liveBytes).toBe(u0.archiveBytes);
    await r0.close();
    const w = await DesWriter.append(file);
    for (let i = 0; i < 4; i++) await w.delete(`x${i}`);
    const report = await w.close();
    const r = await DesReader.open(file);
    const u = await r.spaceUsage();
    expect(u).toMatchObject({ generations: 2, liveEntries: 6, tombstones: 4, liveDataBytes: 6000, liveMetaBytes: 0 });
    // Dead: the 4 deleted bodies and generation 1's index and footer.
    expect(u.reclaimableBytes).toBe(4000 + (u0.archiveBytes - 16 - 10_000));
    expect(report.reclaimableBytes).toBe(u.reclaimableBytes);
    await r.close();
    const compact = path.join(dir, "space-compact.des");
    const rep = await repack(file, compact);
    expect(rep).toMatchObject({ added: 6, deleted: 0, reclaimableBytes: 0 });
    expect(fs.statSync(compact).size).toBe(u.liveBytes - (u.indexBytes - (await indexBytesOf(compact))));
  });
});

async function indexBytesOf(file: string): Promise<number> {
  const r = await DesReader.open(file);
  const g = await r.generations();
  await r.close();
  return g[g.length - 1]!.indexBytes;
}

describe("repack and merge", () => {
  const dir = tempDir("des-repack-");

  it("repack copies stored bytes and checksums without inflating, filters, and re-encodes only when asked", async () => {
    const src = path.join(dir, "src.des");
    await DesWriter.write(src, {}, async (w) => {
      for (let i = 0; i < 30; i++)
        await w.add(`k${String(i).padStart(2, "0")}`, bodyOf(i, 3000), {
          compress: i % 2 ? "gzip" : "none",
          meta: { i },
        });
    });
    const w = await DesWriter.append(src);
    await w.delete("k00");
    await w.add("late", enc("late"));
    await w.close();

    const out = path.join(dir, "out.des");
    const rep = await repack(src, out, { filter: (e) => e.name !== "k05" });
    expect(rep).toMatchObject({
      added: 29,
      deleted: 1,
      bytesWritten: fs.statSync(out).size,
      sourceBytes: fs.statSync(src).size,
    });
    const a = await DesReader.open(src);
    const b = await DesReader.open(out);
    expect(b.generation).toBe(1);
    expect((await b.verify()).ok).toBe(true);
    for (const name of await b.list()) {
      const sa = await a.stat(name);
      const sb = await b.stat(name);
      expect([sb.compression, sb.storedSize, sb.size]).toEqual([sa.compression, sa.storedSize, sa.size]);
      expect(Buffer.compare(Buffer.from(await b.get(name)), Buffer.from(await a.get(name)))).toBe(0);
      expect(await b.getMeta(name)).toEqual(await a.getMeta(name));
    }
    expect(await b.has("k05")).toBe(false);
    expect(await b.has("k00")).toBe(false);
    await b.close();

    const br = path.join(dir, "brotli.des");
    await repack(src, br, { compress: "brotli" });
    const c = await DesReader.open(br);
    expect((await c.stat("k02")).compression).toBe("brotli");
    expect(Buffer.compare(Buffer.from(await c.get("k02")), Buffer.from(await a.get("k02")))).toBe(0);
    await c.close();

    const v1 = path.join(dir, "v1.des");
    await repack(src, v1, { format: 1 });
    const d = await DesReader.open(v1);
    expect(d.formatVersion).toBe(1);
    expect((await d.list()).length).toBe(30);
    expect(Buffer.compare(Buffer.from(await d.get("k03")), Buffer.from(await a.get("k03")))).toBe(0);
    await d.close();
    await a.close();
  });

  it("repack refuses a corrupt body with DES_CHECKSUM and leaves no target", async () => {
    const src = path.join(dir, "corrupt.des");
    await DesWriter.write(src, {}, async (w) => w.add("a", bodyOf(1, 500)));
    const bytes = fs.readFileSync(src);
    bytes[100] = bytes[100]! ^ 0xff;
    fs.writeFileSync(src, bytes);
    const out = path.join(dir, "corrupt-out.des");
    await expect(repack(src, out)).rejects.toMatchObject({ code: "DES_CHECKSUM" });
    expect(fs.existsSync(out)).toBe(false);
  });

  it("merge applies the duplicate rule", async () => {
    const parts: string[] = [];
    for (let p = 0; p < 3; p++) {
      const file = path.join(dir, `part${p}.des`);
      await DesWriter.write(file, {}, async (w) => {
        await w.add(`only${p}`, enc(`p${p}`));
        await w.add("shared", enc(`shared from ${p}`));
      });
      parts.push(file);
    }
    const err = path.join(dir, "m-err.des");
    await expect(merge(parts, err)).rejects.toBeInstanceOf(DesDuplicateError);
    expect(fs.existsSync(err)).toBe(false);
    const first = path.join(dir, "m-first.des");
    expect(await merge(parts, first, { onDuplicate: "first" })).toMatchObject({ added: 4, deleted: 2 });
    expect((await everything(first)).get("shared")).toBe("shared from 0");
    const last = path.join(dir, "m-last.des");
    await merge(parts, last, { onDuplicate: "last" });
    const m = await everything(last);
    expect(m).toEqual(
      new Map([
        ["only0", "p0"],
        ["only1", "p1"],
        ["only2", "p2"],
        ["shared", "shared from 2"],
      ]),
    );
  });
});
