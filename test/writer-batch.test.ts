/**
 * The batch paths of the writer: `addMany`, and packDirectory's packed adds
 * (bodies back to back in one buffer, written by the FileSink without a
 * copy). Each must write exactly the bytes of one `add` per entry, refuse
 * the same names with the same errors, and keep the crash-safety promises.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DesDuplicateError,
  DesInvalidArgumentError,
  DesIoError,
  DesReader,
  DesWriter,
  LocalFolderStore,
  MemorySink,
  MemorySource,
  listTree,
  packDirectory,
} from "../src/index.js";
import type { ByteSink, WriterOptions } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic bytes. */
function body(seed: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

type Entry = readonly [string, Uint8Array];

/** The reference: one awaited add per entry; a refused add is skipped, as a caller catching it would. */
async function perEntry(entries: readonly Entry[], opts: WriterOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, opts);
  for (const [name, data] of entries) await w.add(name, data).catch(() => undefined);
  await w.close();
  return sink.bytes();
}

async function batched(entries: readonly Entry[], opts: WriterOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, opts);
  await w.addMany(entries);
  await w.close();
  return sink.bytes();
}

function sameBytes(a: Uint8Array, b: Uint8Array): void {
  expect(a.length).toBe(b.length);
  expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
}

describe("addMany writes the bytes of one add per entry", () => {
  const mixed: Entry[] = [
    ["a.txt", enc("hello")],
    ["empty", new Uint8Array(0)],
    ["dir/ünïcödé-名前.bin", body(1, 1000)],
    ["dir/emoji-😀", body(2, 70_000)],
    ["zz", body(3, 5)],
  ];

  it.each([2, 1] as const)("v%i, mixed names and sizes", async (format) => {
    const entries = format === 1 ? mixed.map(([n, b]) => [n.replace(/\//g, "_"), b] as const) : mixed;
    sameBytes(await batched(entries, { format }), await perEntry(entries, { format }));
  });

  it("across group boundaries (more than 4 MiB of bodies, one body bigger than a group)", async () => {
    const entries: Entry[] = [];
    for (let i = 0; i < 300; i++)
      entries.push([`f${String(i).padStart(4, "0")}`, body(i, 1000 + ((i * 7919) % 40_000))]);
    entries.splice(150, 0, ["huge", body(999, (4 << 20) + 17)]);
    sameBytes(await batched(entries), await perEntry(entries));
  });

  it("by writers running at once (the group buffer is lent to one call at a time), through a sink that answers late", async () => {
    /** A sink that keeps the chunk until a later turn, then copies it: a chunk reused too early shows up in its bytes. */
    class LateSink extends MemorySink {
      override async write(chunk: Uint8Array): Promise<void> {
        await new Promise((r) => setTimeout(r, 1));
        await super.write(chunk);
      }
    }
    const lists = [0, 1, 2].map((w) => {
      const entries: Entry[] = [];
      for (let i = 0; i < 700; i++)
        entries.push([`w${w}/f${String(i).padStart(4, "0")}`, body(w * 1000 + i, 7000 + i)]);
      return entries;
    });
    const sinks = lists.map(() => new LateSink());
    const writers = await Promise.all(sinks.map((s) => DesWriter.create(s)));
    // Each list is more than 4 MiB: two groups per call, the calls interleaved.
    await Promise.all(writers.map((w, k) => w.addMany(lists[k]!)));
    await Promise.all(writers.map((w) => w.close()));
    for (let k = 0; k < lists.length; k++) sameBytes(sinks[k]!.bytes(), await perEntry(lists[k]!));
  });

  it("in name order and out of it, with an index of many pages", async () => {
    const sorted: Entry[] = [];
    for (let i = 0; i < 60_000; i++)
      sorted.push([`some/longer/prefix/n${String(i).padStart(6, "0")}`, new Uint8Array(i % 3).fill(i & 255)]);
    const inOrder = await batched(sorted);
    sameBytes(inOrder, await perEntry(sorted));
    const shuffled = sorted.map((e, i) => [sorted[(i * 7919) % sorted.length]![0], e[1]] as const);
    const outOfOrder = await batched(shuffled);
    sameBytes(outOfOrder, await perEntry(shuffled));
    // The reader agrees: pages, checksums and every record.
    for (const [archive, entries] of [
      [inOrder, sorted],
      [outOfOrder, shuffled],
    ] as const) {
      const r = await DesReader.open(new MemorySource(archive));
      const report = await r.verify();
      expect(report.ok).toBe(true);
      expect(report.entries).toBe(entries.length);
      expect(report.pages).toBeGreaterThan(8);
      expect(await r.list()).toEqual(sorted.map((e) => e[0]));
      for (const k of [0, 1, 4095, 59_999])
        expect(Buffer.from(await r.get(entries[k]![0])).equals(Buffer.from(entries[k]![1]))).toBe(true);
      await r.close();
    }
  }, 60_000);

  it("interleaved with add(), in call order", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    const p1 = w.add("first", enc("1"));
    const p2 = w.addMany([
      ["second", enc("22")],
      ["third", enc("333")],
    ]);
    const p3 = w.add("fourth", enc("4444"));
    await Promise.all([p1, p2, p3]);
    await w.close();
    const ref = await perEntry([
      ["first", enc("1")],
      ["second", enc("22")],
      ["third", enc("333")],
      ["fourth", enc("4444")],
    ]);
    sameBytes(sink.bytes(), ref);
  });

  it("with compression or an external store, as add() does", async () => {
    const entries: Entry[] = [
      ["small", body(1, 100)],
      ["big", body(2, 5000)],
      ["text", enc("abc".repeat(1000))],
    ];
    sameBytes(await batched(entries, { compress: "gzip" }), await perEntry(entries, { compress: "gzip" }));
    const dir = tempDir();
    const opts = (sub: string): WriterOptions => ({
      externalStore: new LocalFolderStore(path.join(dir, sub)),
      bigFileThreshold: 1000,
    });
    sameBytes(await batched(entries, opts("a")), await perEntry(entries, opts("b")));
    expect(
      fs
        .readFileSync(path.join(dir, "a", "_bigFiles", "big"))
        .equals(fs.readFileSync(path.join(dir, "b", "_bigFiles", "big"))),
    ).toBe(true);
  });

  it("reads back", async () => {
    const r = await DesReader.open(new MemorySource(await batched(mixed)));
    for (const [name, data] of mixed) expect(Buffer.from(await r.get(name)).equals(Buffer.from(data))).toBe(true);
    await r.close();
  });
});

describe("addMany refuses what add() refuses", () => {
  it("a duplicate (of an earlier entry or within the batch): the entries before it are added, the rest are not, the writer stays usable", async () => {
    for (const dup of ["a", "c"]) {
      const sink = new MemorySink();
      const w = await DesWriter.create(sink);
      await w.add("a", enc("0"));
      await expect(
        w.addMany([
          ["b", enc("1")],
          ["c", enc("2")],
          [dup, enc("3")],
          ["d", enc("4")],
        ]),
      ).rejects.toBeInstanceOf(DesDuplicateError);
      expect(w.entryCount).toBe(3);
      await w.add("e", enc("5"));
      await w.close();
      const ref = await perEntry([
        ["a", enc("0")],
        ["b", enc("1")],
        ["c", enc("2")],
        ["e", enc("5")],
      ]);
      sameBytes(sink.bytes(), ref);
    }
  });

  it("detects duplicates among many names (hash table growth)", async () => {
    const w = await DesWriter.create(new MemorySink());
    const entries: Entry[] = [];
    for (let i = 0; i < 20_000; i++) entries.push([`n${i}`, new Uint8Array(0)]);
    await w.addMany(entries);
    for (const i of [0, 4095, 4096, 19_999])
      await expect(w.addMany([[`n${i}`, new Uint8Array(0)]])).rejects.toBeInstanceOf(DesDuplicateError);
    expect(w.entryCount).toBe(20_000);
    await w.abort();
  });

  it.each([
    ["empty", ""],
    ["NUL", "a\0b"],
    ["too long", "x".repeat(65_536)],
    ["too long in UTF-8", "é".repeat(40_000)],
    ["lone surrogate", "a\ud800"],
  ])("a name that is %s, with the same message as add()", async (_label, name) => {
    const w = await DesWriter.create(new MemorySink());
    const viaAdd = await w.add(name, enc("x")).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(viaAdd).toBeInstanceOf(DesInvalidArgumentError);
    await expect(
      w.addMany([
        ["ok", enc("1")],
        [name, enc("x")],
        ["never", enc("2")],
      ]),
    ).rejects.toThrow(viaAdd!.message);
    expect(w.entryCount).toBe(1);
    await w.add("fine", enc("x"));
    await w.close();
  });

  it("v1 forbidden characters", async () => {
    const w = await DesWriter.create(new MemorySink(), { format: 1 });
    await expect(w.addMany([["a/b", enc("x")]])).rejects.toBeInstanceOf(DesInvalidArgumentError);
    // v1 allows duplicates.
    await w.addMany([
      ["x", enc("1")],
      ["x", enc("2")],
    ]);
    expect(w.entryCount).toBe(2);
    await w.close();
  });
});

describe("addMany and crash safety", () => {
  const dir = tempDir();
  const leftovers = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));

  it("abort() after addMany leaves no file at the target and no temporary", async () => {
    const target = path.join(dir, "aborted.des");
    const w = await DesWriter.create(target);
    await w.addMany([
      ["a", body(1, 3 << 20)],
      ["b", body(2, 100)],
    ]);
    await w.abort();
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it("a sink that fails while the bodies are written fails the writer; nothing is committed", async () => {
    let writes = 0;
    let aborted = false;
    const failing: ByteSink = {
      location: "failing:",
      async write() {
        if (++writes > 1) throw new Error("disk gone");
      },
      async commit() {
        throw new Error("must not commit");
      },
      async abort() {
        aborted = true;
      },
    };
    const w = await DesWriter.create(failing);
    await expect(w.addMany([["a", enc("x")]])).rejects.toThrow("disk gone");
    await expect(w.add("b", enc("y"))).rejects.toBeInstanceOf(DesIoError);
    await expect(w.close()).rejects.toBeInstanceOf(DesIoError);
    await w.abort();
    expect(aborted).toBe(true);
  });
});

describe("packDirectory (packed batches, FileSink without copies)", () => {
  const dir = tempDir();
  const tree = path.join(dir, "tree");
  const files: { name: string; size: number }[] = [];
  // Over a thousand files (several read chunks), an empty one, files that fill
  // a 2 MiB read buffer unevenly, files at and above the 1 MiB read-whole
  // limit (the latter streamed), non-ASCII names, nested folders.
  for (let i = 0; i < 1500; i++)
    files.push({ name: `d${i % 7}/sub${i % 3}/f${String(i).padStart(5, "0")}.bin`, size: (i * 7919) % 6000 });
  for (let i = 0; i < 6; i++) files.push({ name: `large/part${i}.bin`, size: 700_000 + i * 1111 });
  files.push(
    { name: "large/over-limit.bin", size: (1 << 20) + 5 },
    { name: "large/at-limit.bin", size: 1 << 20 },
    { name: "empty.txt", size: 0 },
    { name: "ünï/名前-😀.txt", size: 33 },
  );
  // Around the readers' first read of a file (64 KiB).
  for (const size of [65_535, 65_536, 65_537]) files.push({ name: `probe/${size}.bin`, size });
  files.forEach((f, i) => {
    const p = path.join(tree, ...f.name.split("/"));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, body(i, f.size));
  });

  async function reference(opts: WriterOptions = {}): Promise<Uint8Array> {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, opts);
    for (const f of await listTree(tree)) await w.add(f.name, { path: f.fullPath });
    await w.close();
    return sink.bytes();
  }

  it("writes the bytes of one add per file, through a FileSink and a MemorySink", async () => {
    const ref = await reference();
    const target = path.join(dir, "packed.des");
    const seen: string[] = [];
    const stats = await packDirectory(tree, target, { onEntry: (name) => seen.push(name) });
    expect(stats.entries).toBe(files.length);
    sameBytes(fs.readFileSync(target), ref);
    expect(seen).toEqual((await listTree(tree)).map((f) => f.name));
    const sink = new MemorySink();
    await packDirectory(tree, sink);
    sameBytes(sink.bytes(), ref);
  }, 60_000);

  it("with one reader buffer more or less, and with compression (the per-entry path)", async () => {
    const ref = await reference();
    const sink = new MemorySink();
    await packDirectory(tree, sink, { readAhead: 2 });
    sameBytes(sink.bytes(), ref);
    const gz = new MemorySink();
    await packDirectory(tree, gz, { compress: "gzip" });
    sameBytes(gz.bytes(), await reference({ compress: "gzip" }));
  }, 60_000);

  it("leaves nothing behind when the target exists, or when the signal aborts", async () => {
    const target = path.join(dir, "exists.des");
    fs.writeFileSync(target, "old");
    await expect(packDirectory(tree, target)).rejects.toThrow(/exists/);
    expect(fs.readFileSync(target, "utf8")).toBe("old");
    const ac = new AbortController();
    const aborted = path.join(dir, "aborted.des");
    let n = 0;
    await expect(
      packDirectory(tree, aborted, { signal: ac.signal, onEntry: () => ++n === 500 && ac.abort() }),
    ).rejects.toThrow();
    expect(fs.existsSync(aborted)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  }, 60_000);
});
