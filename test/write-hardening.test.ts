import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { decode } from "@msgpack/msgpack";
import { encodeMetaV2, loadMetaCodec } from "../src/format/meta.js";
import { loadHasher } from "../src/format/hash.js";
import { SpillBuffer } from "../src/write/spill.js";
import {
  DesReader,
  DesWriter,
  FileSource,
  LocalFolderStore,
  MemorySink,
  MemorySource,
  packDirectory,
} from "../src/index.js";
import type { ByteSink, ExternalStore, WriterOptions } from "../src/index.js";
import { isTypedDesError, withTimeout } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";
import { loadManifest, vectorDir, vectorsPresent } from "./helpers/vectors.js";

beforeAll(() => loadMetaCodec());

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dir = tempDir("des-write-hardening-");

/** The code of a rejection (and that it is a typed DesError). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isTypedDesError(e)).toBe(true);
    return (e as { code: string }).code;
  }
  throw new Error("expected a rejection");
}

/**
 * A real sink that fills up: the first `room` bytes are kept, every later
 * write goes to /dev/full, which fails with the kernel's own ENOSPC.
 */
class FillingSink implements ByteSink {
  readonly location = "filling:";
  written = 0;
  commits = 0;
  aborts = 0;
  constructor(private readonly room: number) {}
  async write(chunk: Uint8Array): Promise<void> {
    if (this.written + chunk.length <= this.room) {
      this.written += chunk.length;
      return;
    }
    const fd = fs.openSync("/dev/full", "w");
    try {
      fs.writeSync(fd, chunk);
    } finally {
      fs.closeSync(fd);
    }
  }
  async commit(): Promise<void> {
    this.commits++;
  }
  async abort(): Promise<void> {
    this.aborts++;
  }
}

/** A sink that counts what reaches it, to show a refused add wrote nothing. */
class CountingSink extends MemorySink {
  bytesIn = 0;
  override async write(chunk: Uint8Array): Promise<void> {
    this.bytesIn += chunk.length;
    return super.write(chunk);
  }
}

describe("issue 7.2: any write failure poisons the writer with DES_IO and commits nothing", () => {
  it("a sink that runs out of space: addMany and add reject with DES_IO (never a raw ENOSPC), close commits nothing", async () => {
    // 51 entries fit; the 52nd (an addMany: the packed path) meets the full disk first.
    const sink = new FillingSink(16 + 5100);
    const w = await DesWriter.create(sink);
    let failures = 0;
    for (let i = 0; i < 300; i++) {
      const p =
        i % 2 === 0 ? w.add(`e${i}`, new Uint8Array(100).fill(i)) : w.addMany([[`e${i}`, new Uint8Array(100).fill(i)]]);
      try {
        await p;
      } catch (e) {
        failures++;
        expect(isTypedDesError(e)).toBe(true);
        expect((e as { code: string }).code).toBe("DES_IO");
      }
    }
    expect(failures).toBeGreaterThan(200);
    expect(await codeOf(w.close())).toBe("DES_IO");
    expect(sink.commits).toBe(0);
    expect(sink.aborts).toBe(1);
  });

  it("a meta spill file on a full disk: the add that hits it rejects with DES_IO, later adds too, and close commits nothing", async () => {
    await loadHasher();
    const target = path.join(dir, "spill-full.des");
    const w = await DesWriter.create(target, { metaMemoryLimit: 0 });
    const opened: string[] = [];
    // The spill file is /dev/full: every write fails with ENOSPC, as on a full disk.
    Object.assign(w, {
      meta: new SpillBuffer(0, dir, () => {
        opened.push("/dev/full");
        return { path: path.join(dir, "never-created.tmp"), fd: fs.openSync("/dev/full", "w+") };
      }),
    });
    const codes: string[] = [];
    for (let i = 0; i < 300; i++) {
      try {
        await w.add(`m${i}`, enc(`body ${i}`), { meta: { i, text: "x".repeat(100) } });
        codes.push("ok");
      } catch (e) {
        codes.push(isTypedDesError(e) ? e.code : `untyped ${String(e)}`);
      }
    }
    expect(opened.length).toBe(1);
    expect(codes.filter((c) => c !== "DES_IO")).toEqual([]);
    expect(await codeOf(w.close())).toBe("DES_IO");
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes("spill-full"))).toEqual([]);
  });

  it("SpillBuffer: a failed append counts no bytes; a spill file cut short fails read() with DES_IO", async () => {
    const full = new SpillBuffer(0, dir, () => ({
      path: path.join(dir, "nothing.tmp"),
      fd: fs.openSync("/dev/full", "w+"),
    }));
    expect(() => full.append(new Uint8Array(10))).toThrow(expect.objectContaining({ code: "DES_IO" }));
    expect(full.length).toBe(0);
    full.dispose();

    const p = path.join(dir, "short.tmp");
    const spill = new SpillBuffer(0, dir, () => ({ path: p, fd: fs.openSync(p, "wx+", 0o600) }));
    spill.append(new Uint8Array(1000).fill(1));
    spill.append(new Uint8Array(1000).fill(2));
    expect(spill.length).toBe(2000);
    expect(fs.statSync(p).size).toBe(2000);
    fs.truncateSync(p, 1500);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const c of spill.read()) got.push(c.length);
      })(),
    ).rejects.toMatchObject({ code: "DES_IO" });
    expect(got).toEqual([1500]);
    spill.dispose();
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe("issue 7.3: Map meta, refusals, Date, v1 meta as Maps", () => {
  it("stores a Map (nested too) as a MessagePack map with its key order", async () => {
    await loadHasher();
    const meta = new Map<unknown, unknown>([
      ["b", 1],
      [
        "a",
        {
          x: new Map<unknown, unknown>([
            [2, "two"],
            ["1", "one"],
          ]),
        },
      ],
    ]);
    // fixmap(2) "b" 1 "a" fixmap(1) "x" fixmap(2) 2 "two" "1" "one"
    const expected = [
      0x82, 0xa1, 0x62, 0x01, 0xa1, 0x61, 0x81, 0xa1, 0x78, 0x82, 0x02, 0xa3, 0x74, 0x77, 0x6f, 0xa1, 0x31, 0xa3, 0x6f,
      0x6e, 0x65,
    ];
    expect(Array.from(encodeMetaV2(meta))).toEqual(expected);
    // Plain objects keep exactly the library's bytes.
    const plain = {
      z: [1, -1, 1.5, "s", null, true, new Uint8Array([1, 2])],
      big: 2n ** 63n,
      nested: { k: undefined, v: "w" },
    };
    expect(decode(encodeMetaV2(plain), { useBigInt64: true })).toEqual({
      z: [1, -1, 1.5, "s", null, true, new Uint8Array([1, 2])],
      big: 2n ** 63n,
      nested: { v: "w" },
    });
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      await w.add("m", enc("x"), { meta });
    });
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(await r.getMeta("m")).toEqual({ b: 1, a: { x: { 2: "two", 1: "one" } } });
  });

  it("refuses what would not read back as written, before writing, and stays usable; a Date reads back as a Date", async () => {
    const sink = new CountingSink();
    const w = await DesWriter.create(sink);
    class Point {
      constructor(readonly x = 1) {}
    }
    const bad: unknown[] = [
      new Set([1]),
      new WeakMap(),
      new Error("e"),
      Promise.resolve(1),
      new Point(),
      { nested: [new Set()] },
      new Map([[{}, 1]]),
      new Int16Array(2),
      () => 1,
      Symbol("s"),
      new Date(NaN),
      { deep: new Map([["k", new Point()]]) },
    ];
    for (const meta of bad) {
      const before = sink.bytesIn;
      expect(await codeOf(w.add("x", enc("body"), { meta }))).toBe("DES_INVALID_ARGUMENT");
      expect(sink.bytesIn).toBe(before);
    }
    const when = new Date(Date.UTC(2025, 0, 15, 12, 30, 45, 678));
    await w.add("x", enc("body"), { meta: { when, list: [when] } });
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    const got = (await r.getMeta("x")) as { when: Date; list: Date[] };
    expect(got.when).toBeInstanceOf(Date);
    expect(got.when.getTime()).toBe(when.getTime());
    expect(got.list[0]!.getTime()).toBe(when.getTime());
  });

  it("v1 getMeta({ maps: true }) keeps Python's key order and integer-like keys, so a read-modify-write keeps them", async () => {
    const write = async (meta: unknown): Promise<Uint8Array> => {
      const sink = new MemorySink();
      await DesWriter.write(sink, { format: 1 }, async (w) => {
        await w.add("a", enc("abc"), { meta });
      });
      return sink.bytes();
    };
    const first = await write(
      new Map<string, unknown>([
        ["b", 1],
        ["10", 2],
        ["2", { "9": 1, z: 2 }],
      ]),
    );
    const r = await DesReader.open(new MemorySource(first));
    const asObject = (await r.getMeta("a")) as Record<string, unknown>;
    // A plain object cannot hold this order: integer-like keys come first.
    expect(Object.keys(asObject)).toEqual(["2", "10", "b", "size"]);
    const asMap = (await r.getMeta("a", { maps: true })) as Map<string, unknown>;
    expect(asMap).toBeInstanceOf(Map);
    expect([...asMap.keys()]).toEqual(["b", "10", "2", "size"]);
    expect([...(asMap.get("2") as Map<string, unknown>).keys()]).toEqual(["9", "z"]);
    expect(Buffer.compare(await write(asMap), first)).toBe(0);
    expect((await r.getMetaMany(["a"], { maps: true })).get("a")).toEqual(asMap);
  });

  it.runIf(vectorsPresent())(
    "rebuilds the Python vector a_small byte for byte from getMeta({ maps: true })",
    async () => {
      const original = await DesReader.open(await FileSource.open(path.join(vectorDir("a_small"), "archive.des")));
      const manifest = loadManifest("a_small");
      const sink = new MemorySink();
      await DesWriter.write(sink, { format: 1 }, async (w) => {
        for (const f of [...manifest.files].sort((a, b) => a.order_added - b.order_added)) {
          await w.add(f.name, await original.get(f.name), { meta: await original.getMeta(f.name, { maps: true }) });
        }
      });
      expect(createHash("sha256").update(sink.bytes()).digest("hex")).toBe(manifest.raw.archive_sha256);
      await original.close();
    },
  );
});

describe("issue 7.4 / 7.8 / 7.25: options and bodies are checked before anything is written", () => {
  it("refuses unknown compress values at create and at add, and keeps the writer usable", async () => {
    expect(await codeOf(DesWriter.create(new MemorySink(), { compress: "lz4" as never }))).toBe("DES_INVALID_ARGUMENT");
    const sink = new CountingSink();
    const w = await DesWriter.create(sink);
    const stream = Readable.from([enc("abc")]);
    expect(await codeOf(w.add("s", stream, { compress: "zstd" as never }))).toBe("DES_INVALID_ARGUMENT");
    expect(await codeOf(w.addMany([["m", enc("x")]], { compress: "lz4" as never }))).toBe("DES_INVALID_ARGUMENT");
    expect(sink.bytesIn).toBe(16);
    await w.add("s", Readable.from([enc("abc")]), { compress: "brotli" });
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(Buffer.from(await r.get("s")).toString()).toBe("abc");
    expect((await r.stat("s")).compression).toBe("brotli");
  });

  it("refuses every numeric option that is not an integer in range, with DES_INVALID_ARGUMENT", async () => {
    const bad: WriterOptions[] = [
      { compressLevel: 99 },
      { compressLevel: -1 },
      { compressLevel: 1.5 },
      { compressLevel: NaN },
      { compressLevel: "6" as never },
      { compress: "gzip", compressLevel: 10 },
      { bigFileThreshold: NaN },
      { bigFileThreshold: -1 },
      { bigFileThreshold: Infinity },
      { metaMemoryLimit: 0.5 },
      { metaMemoryLimit: -5 },
      { format: 3 as never },
      { overwrite: "yes" as never },
    ];
    for (const opts of bad) expect(await codeOf(DesWriter.create(new MemorySink(), opts))).toBe("DES_INVALID_ARGUMENT");
    const sink = new CountingSink();
    const w = await DesWriter.create(sink, { compressLevel: 11 });
    for (const size of [NaN, -1, 1.5, Infinity])
      expect(await codeOf(w.add("a", enc("x"), { size }))).toBe("DES_INVALID_ARGUMENT");
    // brotli takes 11, gzip does not: refused at the add, before writing.
    expect(await codeOf(w.add("a", enc("x"), { compress: "gzip" }))).toBe("DES_INVALID_ARGUMENT");
    expect(sink.bytesIn).toBe(16);
    await w.add("a", enc("x".repeat(100)), { compress: "brotli" });
    expect((await w.close()).entries).toBe(1);
  });

  it("refuses bad body types, a directory and a contradicting size without writing, and accepts ArrayBuffer and any view", async () => {
    const sink = new CountingSink();
    const w = await DesWriter.create(sink);
    const bodies: unknown[] = [
      null,
      undefined,
      42,
      {},
      "text",
      [1, 2],
      { path: dir },
      { path: path.join(dir, "missing") },
    ];
    for (const body of bodies) expect(await codeOf(w.add("x", body as never))).toBe("DES_INVALID_ARGUMENT");
    expect(await codeOf(w.add("x", enc("12345"), { size: 6 }))).toBe("DES_INVALID_ARGUMENT");
    const file = path.join(dir, "five.txt");
    fs.writeFileSync(file, "12345");
    expect(await codeOf(w.add("x", { path: file }, { size: 4 }))).toBe("DES_INVALID_ARGUMENT");
    expect(sink.bytesIn).toBe(16);
    const ab = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer;
    await w.add("ab", ab);
    await w.add("dv", new DataView(ab, 2, 4));
    await w.add("i16", new Int16Array([0x0201, 0x0403]));
    await w.add("file", { path: file }, { size: 5 });
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(Array.from(await r.get("ab"))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(await r.get("dv"))).toEqual([3, 4, 5, 6]);
    expect(Array.from(await r.get("i16"))).toEqual([1, 2, 3, 4]);
    expect(Buffer.from(await r.get("file")).toString()).toBe("12345");
  });

  it("a stream longer or shorter than its size is refused with DES_INVALID_ARGUMENT", async () => {
    const w = await DesWriter.create(new MemorySink());
    expect(await codeOf(w.add("s", Readable.from([enc("abc")]), { size: 5 }))).toBe("DES_INVALID_ARGUMENT");
    // Its bytes reached DATA: the writer cannot finish this archive.
    expect(await codeOf(w.add("t", enc("x")))).toBe("DES_IO");
    await w.abort();
  });
});

describe("issue 7.7 / 7.25: failing and stalled stream bodies", () => {
  it("a compressed stream body that errors rejects add() with a typed error, and the process lives on", async () => {
    for (const compress of ["gzip", "brotli"] as const) {
      const sink = new MemorySink();
      const w = await DesWriter.create(sink, { compress });
      await w.add("ok", enc("fine"));
      // Fails before any byte: nothing of it reached DATA, the writer stays usable.
      const early = (async function* () {
        yield* [];
        throw new Error("source gone");
      })();
      const e1 = await withTimeout(
        w.add("early", early).then(
          () => undefined,
          (e: unknown) => e,
        ),
        5000,
        "early failure",
      );
      expect(isTypedDesError(e1)).toBe(true);
      expect((e1 as Error).message).toMatch(/source gone/);
      await w.add("after", enc("still fine"));
      // Fails after 4 MiB of incompressible bytes went through the compressor: the writer is poisoned.
      const late = Readable.from(
        (async function* () {
          for (let i = 0; i < 4; i++) yield randomBytes(1 << 20, i);
          throw new Error("disk gone");
        })(),
      );
      expect(await withTimeout(codeOf(w.add("late", late)), 5000, "late failure")).toBe("DES_IO");
      expect(await codeOf(w.add("next", enc("x")))).toBe("DES_IO");
      expect(await codeOf(w.close())).toBe("DES_IO");
      await w.abort();
    }
    const w = await DesWriter.create(new MemorySink(), { compress: "gzip" });
    await w.add("early2", enc("x"));
    expect((await w.close()).entries).toBe(1);
  });

  it("AddOptions.signal aborts a stalled stream body with DES_ABORTED, quickly", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    // Aborted before its first byte: the writer stays usable.
    const stalled = (async function* () {
      await new Promise(() => undefined);
      yield enc("never");
    })();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    expect(await withTimeout(codeOf(w.add("stalled", stalled, { signal: ac.signal })), 3000, "stalled add")).toBe(
      "DES_ABORTED",
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    await w.add("ok", enc("fine"));
    // Aborted mid-way (after its first chunk reached DATA): DES_ABORTED for it, then the writer is poisoned.
    const ac2 = new AbortController();
    const half = (async function* () {
      yield enc("half");
      ac2.abort();
      await new Promise(() => undefined);
    })();
    expect(await withTimeout(codeOf(w.add("half", half, { signal: ac2.signal })), 3000, "half add")).toBe(
      "DES_ABORTED",
    );
    expect(await codeOf(w.add("later", enc("x")))).toBe("DES_IO");
    await w.abort();
    // An already-aborted signal refuses the add before anything is written.
    const w2 = await DesWriter.create(new MemorySink());
    expect(await codeOf(w2.add("x", enc("y"), { signal: AbortSignal.abort() }))).toBe("DES_ABORTED");
    expect((await w2.close()).entries).toBe(0);
  });
});

describe("issue 7.7: packDirectory with compression, aborted while a big file streams", () => {
  it("rejects with DES_ABORTED, leaves no archive and no temporary file", async () => {
    const root = path.join(dir, "tree-abort");
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, "a.txt"), "small");
    fs.writeFileSync(path.join(root, "big.bin"), randomBytes(48 << 20, 3));
    const out = path.join(dir, "out-abort");
    fs.mkdirSync(out);
    const target = path.join(out, "aborted.des");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const e = await withTimeout(
      packDirectory(root, target, { compress: "gzip", signal: ac.signal }).then(
        () => undefined,
        (err: unknown) => err,
      ),
      20_000,
      "aborted pack",
    );
    expect(e).toMatchObject({ code: "DES_ABORTED" });
    expect(fs.readdirSync(out)).toEqual([]);
  });
});

describe("issue 7.9: special files are refused quickly", () => {
  it("a FIFO, a device and a directory: DES_INVALID_ARGUMENT at once, the writer stays usable", async () => {
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const sink = new CountingSink();
    const w = await DesWriter.create(sink);
    for (const p of [fifo, "/dev/null", "/dev/zero", dir]) {
      const t0 = performance.now();
      const e = await withTimeout(
        w.add("x", { path: p }).then(
          () => undefined,
          (err: unknown) => err,
        ),
        3000,
        `add ${p}`,
      );
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(e).toMatchObject({ code: "DES_INVALID_ARGUMENT" });
      expect((e as Error).message).toMatch(/FIFO|device|directory/);
      expect(await codeOf(w.addFile("x", p))).toBe("DES_INVALID_ARGUMENT");
    }
    expect(sink.bytesIn).toBe(16);
    await w.add("x", enc("ok"));
    expect((await w.close()).entries).toBe(1);
  });
});

describe("issue 7.24: format 1 writes what the Python writer writes", () => {
  const store = (sub: string): LocalFolderStore => new LocalFolderStore(path.join(dir, sub));

  it("externalises a body of exactly the threshold (Python's >=), and joins the prefix as Python does", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, {
      format: 1,
      externalStore: store("ext1"),
      bigFileThreshold: 1000,
      externalPrefix: "pre/",
    });
    await w.add("below", new Uint8Array(999).fill(1));
    await w.add("at", new Uint8Array(1000).fill(2));
    const stats = await w.close();
    expect(stats.externalEntries).toBe(1);
    const r = await DesReader.open(new MemorySource(sink.bytes()), { externalStore: store("ext1") });
    expect(await r.getMeta("at")).toEqual({ size: 1000, is_external: true, external_key: "pre//_bigFiles/at" });
    expect(await r.getMeta("below")).toEqual({ size: 999 });
    expect((await r.get("at")).every((b) => b === 2)).toBe(true);
    // An empty prefix: Python writes no external_key (it tests the prefix for truth).
    // Its upload key is then "/_bigFiles/<name>", which a bucket takes (a folder store would not).
    const keys: string[] = [];
    const bucket: ExternalStore = {
      async put(key, body) {
        keys.push(key);
        for await (const c of body) void c;
      },
      async get() {
        return new Uint8Array(0);
      },
      async *stream() {},
    };
    const sink2 = new MemorySink();
    await DesWriter.write(
      sink2,
      { format: 1, externalStore: bucket, bigFileThreshold: 10, externalPrefix: "" },
      async (w2) => {
        await w2.add("big", new Uint8Array(10));
      },
    );
    expect(keys).toEqual(["/_bigFiles/big"]);
    const r2 = await DesReader.open(new MemorySource(sink2.bytes()));
    expect(await r2.getMeta("big")).toEqual({ size: 10, is_external: true });
  });

  it.runIf(vectorsPresent())(
    "with a threshold equal to the big file's size, c_many still comes out byte for byte",
    async () => {
      const manifest = loadManifest("c_many");
      const big = manifest.external_files[0]!;
      const original = await DesReader.open(await FileSource.open(path.join(vectorDir("c_many"), "archive.des")), {
        externalStore: new LocalFolderStore(path.join(vectorDir("c_many"), "s3")),
      });
      const sink = new MemorySink();
      const kwargs = manifest.writer_kwargs as { s3_prefix: string };
      await DesWriter.write(
        sink,
        {
          format: 1,
          bigFileThreshold: big.size_bytes,
          externalPrefix: kwargs.s3_prefix,
          externalStore: store("cmany"),
        },
        async (w) => {
          for (const f of [...manifest.files].sort((a, b) => a.order_added - b.order_added)) {
            await w.add(f.name, await original.get(f.name), { meta: f.input_meta ?? undefined });
          }
        },
      );
      expect(createHash("sha256").update(sink.bytes()).digest("hex")).toBe(manifest.raw.archive_sha256);
      await original.close();
    },
  );

  it("refuses meta nested deeper than Python's reader reads, and meta over Python's 10 MiB", async () => {
    const nest = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 1; i < levels; i++) v = [v];
      return { k: v };
    };
    const sink = new CountingSink();
    const w = await DesWriter.create(sink, { format: 1 });
    // The meta object is level 1: 990 levels read back, 991 are refused.
    await w.add("deep", enc("x"), { meta: nest(990) });
    const before = sink.bytesIn;
    expect(await codeOf(w.add("deeper", enc("x"), { meta: nest(991) }))).toBe("DES_INVALID_ARGUMENT");
    expect(await codeOf(w.add("huge", enc("x"), { meta: { blob: "x".repeat(10 * 1024 * 1024) } }))).toBe(
      "DES_INVALID_ARGUMENT",
    );
    expect(
      await codeOf(
        w.add("huge-stream", Readable.from([enc("x")]), { meta: { blob: "x".repeat(10 * 1024 * 1024 - 20) } }),
      ),
    ).toBe("DES_INVALID_ARGUMENT");
    expect(sink.bytesIn).toBe(before);
    await w.add("fits", enc("x"), { meta: { blob: "x".repeat(10 * 1024 * 1024 - 30) } });
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(JSON.stringify(await r.getMeta("deep")).split("[").length - 1).toBe(989);
    expect(((await r.getMeta("fits")) as { blob: string }).blob.length).toBe(10 * 1024 * 1024 - 30);
  });
});

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = (seed + 1) * 2654435761;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}
