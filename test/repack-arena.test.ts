import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { HashArena } from "../src/format/hash-arena.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { DesReader, DesWriter, repack } from "../src/index.js";
import { dataOrder } from "../src/write/repack.js";
import type { EntryRecord } from "../src/format/record.js";
import type { RepackOptions } from "../src/index.js";
import { bodyOf } from "./helpers/data.js";
import { rngFor as rng } from "./helpers/store-rng.js";
import { tempDir } from "./helpers/tmp.js";

beforeAll(() => loadHasher());

describe("HashArena", () => {
  it("hashes views of its memory where they lie, exactly as xxh64 of a copy, touching nothing around them", () => {
    const arena = HashArena.create(3 << 20)!;
    expect(arena).toBeDefined();
    expect(arena.size).toBeGreaterThanOrEqual(3 << 20);
    const r = rng(5);
    arena.memory.forEach((_, i, m) => (m[i] = Math.floor(r() * 256)));
    const before = Buffer.from(arena.memory);
    const buffer = arena.memory.buffer;
    for (const [at, len] of [
      [0, 0],
      [0, 1],
      [1, 31],
      [7, 32],
      [12_345, 100_000],
      [(1 << 20) - 3, 65_537],
      [arena.size - 10, 10],
      [0, arena.size],
    ] as const) {
      const v = arena.view(at, len);
      expect(v.length).toBe(len);
      expect(arena.xxh64(v)).toBe(xxh64(v.slice()));
    }
    // A view of other memory goes through the shared hasher (a copy); a big one must not grow the arena's memory.
    const other = new Uint8Array(5 << 20).fill(9);
    expect(arena.xxh64(other)).toBe(xxh64(other));
    expect(arena.memory.buffer).toBe(buffer);
    expect(Buffer.compare(Buffer.from(arena.memory), before)).toBe(0);
  });
});

describe("dataOrder", () => {
  it("orders positions by data offset, ties in the order given, with the numeric keys and past 2^53 alike", () => {
    const r = rng(9);
    for (const scale of [1e6, 2 ** 50]) {
      // Repeated offsets (empty and external entries sit at 0) keep their order.
      const recs = Array.from({ length: 3000 }, (_, i) => ({
        dataOffset: i % 10 === 0 ? 0 : Math.floor(r() * scale),
      })) as unknown as EntryRecord[];
      const expected = Array.from(recs.keys()).sort((a, b) => recs[a]!.dataOffset - recs[b]!.dataOffset || a - b);
      expect(Array.from(dataOrder(recs))).toEqual(expected);
    }
    expect(Array.from(dataOrder([]))).toEqual([]);
  });
});

describe("repack reads bodies into the hash arena and checks them there", () => {
  const dir = tempDir("des-repack-arena-");
  const N = 400;
  const size = (i: number): number => (i % 97 === 0 ? 200_000 : 300 + ((i * 7919) % 5000));
  const name = (i: number): string => `d${i % 7}/e${String(i).padStart(4, "0")}`;
  let src: string;

  beforeAll(async () => {
    src = path.join(dir, "src.des");
    await DesWriter.write(src, {}, async (w) => {
      for (let i = 0; i < N; i++) await w.add(name(i), bodyOf(i, size(i)), i % 5 === 0 ? { meta: { i } } : {});
    });
  });

  async function check(out: string, keep: (i: number) => boolean): Promise<void> {
    const r = await DesReader.open(out);
    try {
      expect((await r.verify()).ok).toBe(true);
      const names = Array.from({ length: N }, (_, i) => i).filter(keep);
      expect(r.entryCount).toBe(names.length);
      const got = await r.getMany(names.map(name));
      for (const i of names) {
        expect(Buffer.compare(Buffer.from(got.get(name(i))!), Buffer.from(bodyOf(i, size(i))))).toBe(0);
        expect(await r.getMeta(name(i))).toEqual(i % 5 === 0 ? { i } : undefined);
      }
    } finally {
      await r.close();
    }
  }

  // Batches of 64 KiB: bodies of 200 KB are larger than the arena's half (192 KiB) and take plain buffers.
  for (const [label, opts] of [
    ["default batches", {}],
    ["small batches: some bodies larger than the arena", { batchBytes: 64 << 10 }],
    ["without verification (no arena)", { verify: false }],
  ] as [string, RepackOptions][]) {
    it(`copies every byte and meta, half the entries dropped (${label})`, async () => {
      const out = path.join(dir, `half-${label.length}.des`);
      const rep = await repack(src, out, { ...opts, filter: (e) => Number(e.name.slice(-4)) % 2 === 0 });
      expect(rep.added).toBe(N / 2);
      await check(out, (i) => i % 2 === 0);
      const all = path.join(dir, `all-${label.length}.des`);
      await repack(src, all, opts);
      await check(all, () => true);
    });
  }

  async function corrupted(i: number): Promise<string> {
    const r = await DesReader.open(src);
    const st = await r.stat(name(i));
    await r.close();
    const bytes = fs.readFileSync(src);
    const at = st.offset + Math.floor(st.storedSize / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    const file = path.join(dir, `corrupt-${i}.des`);
    fs.writeFileSync(file, bytes);
    return file;
  }

  it("a corrupt body read into the arena is DES_CHECKSUM naming it, and no target is left", async () => {
    const file = await corrupted(3);
    const out = path.join(dir, "c3.des");
    await expect(repack(file, out)).rejects.toMatchObject({
      code: "DES_CHECKSUM",
      subject: { kind: "data", name: name(3) },
    });
    expect(fs.existsSync(out)).toBe(false);
  });

  it("a corrupt body larger than the arena (a plain buffer) is DES_CHECKSUM too", async () => {
    expect(size(194)).toBe(200_000);
    const file = await corrupted(194);
    const out = path.join(dir, "c194.des");
    await expect(repack(file, out, { batchBytes: 64 << 10 })).rejects.toMatchObject({
      code: "DES_CHECKSUM",
      subject: { kind: "data", name: name(194) },
    });
    expect(fs.existsSync(out)).toBe(false);
    // Unverified, the same copy goes through (what verify: false promises).
    await expect(repack(file, path.join(dir, "c194-unverified.des"), { verify: false })).resolves.toMatchObject({
      added: N,
    });
  });
});
