import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader, DesWriter, LocalFolderStore, MemorySink, MemorySource } from "../src/index.js";
import type { RangeSource, ReadHints } from "../src/index.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { v2RecordLength, writeV2Record } from "../src/format/v2/page.js";
import type { V2RecordInput } from "../src/format/v2/page.js";
import { encodeRoot, encodeV2Footer, encodeV2Header } from "../src/format/v2/footer.js";
import { concatBytes } from "../src/format/bytes.js";
import zlib from "node:zlib";
import type { ExternalStore } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** One index page (spec 3.4) of these records, in this order: count, records, checksum. */
function encodePage(records: readonly V2RecordInput[]): Uint8Array {
  const buf = new Uint8Array(12 + records.reduce((n, r) => n + v2RecordLength(r), 0));
  const view = new DataView(buf.buffer);
  view.setUint32(0, records.length, true);
  let o = 4;
  for (const r of records) o = writeV2Record(buf, view, o, r);
  view.setBigUint64(o, xxh64(buf.subarray(0, o)), true);
  return buf;
}
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

beforeAll(loadHasher);

async function archive(opts: { format?: 1 | 2 }, fill: (w: DesWriter) => Promise<void>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, opts, fill);
  return sink.bytes();
}

/** Settles within `ms` or fails the test (a hang must not stall the suite). */
function within<T>(p: Promise<T>, ms = 3000): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`did not settle in ${ms} ms`)), ms)),
  ]);
}

describe("U+FEFF at the start of a name is kept (issue 7.1)", () => {
  it('v1: "\\ufeffa" and "a" are two entries', async () => {
    const bytes = await archive({ format: 1 }, async (w) => {
      await w.add("\ufeffa", enc("with bom"));
      await w.add("a", enc("plain"));
    });
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.list()).toEqual(["\ufeffa", "a"]);
    expect(r.entryCount).toBe(2);
    expect(text(await r.get("\ufeffa"))).toBe("with bom");
    expect(text(await r.get("a"))).toBe("plain");
    const v = await r.verify();
    expect(v.ok).toBe(true);
    expect(v.entries).toBe(2);
  });

  it("multi-page v2: a BOM-prefixed entry is reachable and verify() agrees", async () => {
    const bytes = await archive({}, async (w) => {
      for (let i = 0; i < 6000; i++) await w.add(`n${i}`, enc(`b${i}`));
      await w.add("\ufeffbom", enc("with bom"));
      await w.add("bom", enc("plain"));
      await w.add("\ufeff", enc("only a bom"));
    });
    const r = await DesReader.open(new MemorySource(bytes));
    expect((await r.verify()).pages).toBeGreaterThan(1);
    expect(text(await r.get("\ufeffbom"))).toBe("with bom");
    expect(text(await r.get("bom"))).toBe("plain");
    expect(text(await r.get("\ufeff"))).toBe("only a bom");
    const names = await r.list();
    expect(names).toHaveLength(6003);
    expect(names.filter((n) => n.includes("bom"))).toEqual(["bom", "\ufeffbom"]);
    const v = await r.verify();
    expect(v.problems).toEqual([]);
    expect(v.dataChecked).toBe(6003);
  });
});

describe("U+FEFF at the start of a v2 meta string or key is kept (issue 7.1)", () => {
  it("short and long (over 200 bytes, where the MessagePack library decodes with a default TextDecoder)", async () => {
    const meta: Record<string, string> = {};
    for (const n of [1, 50, 199, 200, 201, 300, 5000]) meta[`\ufeff${"k".repeat(n)}`] = `\ufeff${"v".repeat(n)}`;
    meta["plain"] = "\ufeff\ufeff" + "x".repeat(400);
    const bytes = await archive({}, async (w) => w.add("a", enc("x"), { meta }));
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.getMeta("a")).toEqual(meta);
  });
});

describe("numeric options are validated (issue 7.8)", () => {
  it("refuses bad reader options with DES_INVALID_ARGUMENT", async () => {
    const bytes = await archive({}, async (w) => w.add("a", enc("x")));
    const bad: Record<string, unknown>[] = [
      { concurrency: Number.NaN },
      { concurrency: 0 },
      { concurrency: 1.5 },
      { maxGap: -1 },
      { maxGap: Infinity },
      { maxSpan: 0 },
      { pageCacheBytes: -5 },
      { maxEntryBytes: Number.NaN },
      { maxBatchBytes: 0 },
      { tailSize: 100 },
      { cacheTtlMs: 0 },
      { concurrency: "8" },
      { verify: "yes" },
    ];
    for (const o of bad) {
      await expect(within(DesReader.open(new MemorySource(bytes), o)), JSON.stringify(o)).rejects.toMatchObject({
        code: "DES_INVALID_ARGUMENT",
      });
    }
  });

  it("refuses bad per-call options before any read (NaN concurrency used to hang)", async () => {
    const bytes = await archive({}, async (w) => {
      for (let i = 0; i < 50; i++) await w.add(`e${i}`, enc(`v${i}`));
    });
    const r = await DesReader.open(new MemorySource(bytes));
    const names = Array.from({ length: 50 }, (_, i) => `e${i}`);
    for (const o of [
      { concurrency: Number.NaN },
      { concurrency: -1 },
      { maxGap: Number.NaN },
      { maxSpan: 0.5 },
      { maxBatchBytes: -1 },
      { missing: "ignore" },
    ]) {
      await expect(within(r.getMany(names, o as object)), JSON.stringify(o)).rejects.toMatchObject({
        code: "DES_INVALID_ARGUMENT",
      });
      await expect(within(r.getMetaMany(names, o as object)), JSON.stringify(o)).rejects.toMatchObject({
        code: "DES_INVALID_ARGUMENT",
      });
    }
    const it = r.iterMany(names, { concurrency: Number.NaN });
    await expect(within(it.next())).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    expect((await r.getMany(names, { concurrency: 3 })).size).toBe(50);
  });
});

/** A memory source with remote-like hints and a delay, so many reads are in flight at once. */
class SlowSource implements RangeSource {
  readonly key = "slow:";
  readonly hints: ReadHints = { maxGap: 0, maxSpan: 64, concurrency: 32 };
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    await new Promise((r) => setTimeout(r, 5));
    return this.bytes.slice(offset, offset + length);
  }
  async readTail(length: number): Promise<{ bytes: Uint8Array; size: number }> {
    const n = Math.min(length, this.bytes.length);
    return { bytes: this.bytes.slice(this.bytes.length - n), size: this.bytes.length };
  }
}

describe("many concurrent groups on one signal (issue 7.13)", () => {
  it("print no MaxListenersExceededWarning", async () => {
    const bytes = await archive({}, async (w) => {
      for (let i = 0; i < 400; i++) await w.add(`e${String(i).padStart(3, "0")}`, new Uint8Array(200).fill(i & 255));
    });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const r = await DesReader.open(new SlowSource(bytes), { tailSize: 256 });
      const ac = new AbortController();
      const names = Array.from({ length: 400 }, (_, i) => `e${String(i).padStart(3, "0")}`);
      // 40 concurrent single gets and 5 batches of 32 concurrent groups, all on one signal.
      const gets = names.slice(0, 40).map((n) => r.get(n, { signal: ac.signal }));
      const batches = [0, 1, 2, 3, 4].map((k) => r.getMany(names.slice(k * 80, k * 80 + 80), { signal: ac.signal }));
      await Promise.all([...gets, ...batches]);
      for await (const [, b] of r.iterMany(names, { signal: ac.signal })) expect(b.length).toBe(200);
      await new Promise((res) => setImmediate(res));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  });
});

/** A one-entry v2 archive built by hand, with any flags value (up to 53 bits). */
async function v2WithFlags(flags: number): Promise<Uint8Array> {
  const data = enc("hello");
  const page = encodePage([
    {
      name: enc("a"),
      flags,
      codec: 0,
      size: data.length,
      storedSize: data.length,
      dataOffset: 16,
      dataHash: xxh64(data),
      externalKey: undefined,
      metaLength: 0,
      metaOffset: 0,
      metaHash: 0n,
    },
  ]);
  const root = encodeRoot([page.length]);
  const indexStart = 16 + data.length;
  const indexLength = page.length + root.length;
  const total = indexStart + indexLength + 128;
  const footer = encodeV2Footer({
    pageBits: 0,
    requiredFeatures: 0,
    dataStart: 16,
    dataLength: data.length,
    metaStart: indexStart,
    metaLength: 0,
    indexStart,
    indexLength,
    entryCount: 1,
    prevFooterOffset: 0,
    archiveLength: total,
    rootHash: xxh64(root),
  });
  return concatBytes([encodeV2Header(), data, page, root, footer]);
}

describe("flags (issue 7.22)", () => {
  it("v2: flag bits 32-52 are refused with DES_UNSUPPORTED (no 32-bit bitwise test)", async () => {
    const ok = await DesReader.open(new MemorySource(await v2WithFlags(0)));
    expect(text(await ok.get("a"))).toBe("hello");
    for (const bit of [32, 40, 52]) {
      const r = await DesReader.open(new MemorySource(await v2WithFlags(2 ** bit)));
      expect(await r.list()).toEqual(["a"]);
      await expect(r.get("a"), `bit ${bit}`).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
      await expect(r.getMeta("a")).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
      const v = await r.verify();
      expect(v.problems.map((p) => p.code)).toEqual(["DES_UNSUPPORTED"]);
    }
  });

  it("v1: flag 0x02 (Python-compressed) is refused with DES_UNSUPPORTED, not returned raw", async () => {
    const bytes = await archive({ format: 1 }, async (w) => {
      await w.add("a", enc("raw bytes"));
      await w.add("b", enc("fine"));
    });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const indexStart = Number(view.getBigUint64(bytes.length - 72 + 48, true));
    const nameLen = view.getUint16(indexStart, true);
    view.setUint32(indexStart + 2 + nameLen + 32, 0x02, true);
    const r = await DesReader.open(new MemorySource(bytes));
    expect(await r.list()).toEqual(["a", "b"]);
    expect((await r.stat("a")).flags).toBe(2);
    await expect(r.get("a")).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
    expect(text(await r.get("b"))).toBe("fine");
    expect((await r.verify()).problems.map((p) => [p.name, p.code])).toEqual([["a", "DES_UNSUPPORTED"]]);
  });
});

describe("external keys stay inside the archive's prefix (issue 7.20)", () => {
  const dir = tempDir("des-ext-");

  /** A v2 archive whose external entry records `key`, built by rewriting a real one's key bytes. */
  async function withKey(key: string): Promise<{ bytes: Uint8Array; store: LocalFolderStore }> {
    const root = path.join(dir, `s${Math.random().toString(36).slice(2)}`);
    const store = new LocalFolderStore(root);
    fs.mkdirSync(path.join(root, "day", "_bigFiles"), { recursive: true });
    fs.mkdirSync(path.join(root, "secret"), { recursive: true });
    fs.writeFileSync(path.join(root, "secret", "passwords"), "top secret");
    const body = enc("0123456789");
    fs.writeFileSync(path.join(root, "day", "_bigFiles", "big"), body);
    const page = encodePage([
      {
        name: enc("big"),
        flags: 0x01,
        codec: 0,
        size: key === "day/_bigFiles/big" ? body.length : 10,
        storedSize: 10,
        dataOffset: 0,
        dataHash: xxh64(key === "day/_bigFiles/big" ? body : enc("top secret")),
        externalKey: enc(key),
        metaLength: 0,
        metaOffset: 0,
        metaHash: 0n,
      },
    ]);
    const rootBytes = encodeRoot([page.length]);
    const total = 16 + page.length + rootBytes.length + 128;
    const footer = encodeV2Footer({
      pageBits: 0,
      requiredFeatures: 0,
      dataStart: 16,
      dataLength: 0,
      metaStart: 16,
      metaLength: 0,
      indexStart: 16,
      indexLength: page.length + rootBytes.length,
      entryCount: 1,
      prevFooterOffset: 0,
      archiveLength: total,
      rootHash: xxh64(rootBytes),
    });
    return { bytes: concatBytes([encodeV2Header(), page, rootBytes, footer]), store };
  }

  it("refuses a key outside <dirname(archiveKey)>/_bigFiles/<name> unless opted in", async () => {
    const { bytes, store } = await withKey("secret/passwords");
    const r = await DesReader.open(new MemorySource(bytes), { externalStore: store, archiveKey: "day/shard.des" });
    await expect(r.get("big")).rejects.toMatchObject({
      code: "DES_EXTERNAL",
      message: expect.stringMatching(/allowExternalKeysOutsidePrefix/),
    });
    await expect(new Promise((res, rej) => r.stream("big").on("data", res).on("error", rej))).rejects.toMatchObject({
      code: "DES_EXTERNAL",
    });
    expect((await r.verify()).problems.map((p) => p.code)).toEqual(["DES_EXTERNAL"]);
    // Without an archive key the prefix is unknown, but the key must still be .../_bigFiles/<name>.
    const bare = await DesReader.open(new MemorySource(bytes), { externalStore: store });
    await expect(bare.get("big")).rejects.toMatchObject({ code: "DES_EXTERNAL" });
    const open = await DesReader.open(new MemorySource(bytes), {
      externalStore: store,
      archiveKey: "day/shard.des",
      allowExternalKeysOutsidePrefix: true,
    });
    expect(text(await open.get("big"))).toBe("top secret");
  });

  it("refuses .. segments and another prefix; accepts the entry's own key", async () => {
    for (const key of ["day/_bigFiles/../../secret/passwords", "other/_bigFiles/big", "day/_bigFiles/big/../big"]) {
      const { bytes, store } = await withKey(key);
      const r = await DesReader.open(new MemorySource(bytes), { externalStore: store, archiveKey: "day/shard.des" });
      await expect(r.get("big"), key).rejects.toMatchObject({ code: "DES_EXTERNAL" });
    }
    const { bytes, store } = await withKey("day/_bigFiles/big");
    const r = await DesReader.open(new MemorySource(bytes), { externalStore: store, archiveKey: "day/shard.des" });
    expect(text(await r.get("big"))).toBe("0123456789");
    const explicit = await DesReader.open(new MemorySource(bytes), { externalStore: store, externalPrefix: "day" });
    expect(text(await explicit.get("big"))).toBe("0123456789");
  });
});

describe("verify() checks what a read serves (issue 7.23)", () => {
  it("v1: a name written twice, both external: the superseded record is not checked against the newer object", async () => {
    const root = tempDir("des-dup-");
    const store = new LocalFolderStore(root);
    // DesWriter refuses duplicate names: "y" is renamed to "x" below, as Python writes a name twice.
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, { format: 1, externalStore: store, bigFileThreshold: 10 });
    await w.add("x", new Uint8Array(1000).fill(1));
    await w.add("y", new Uint8Array(2000).fill(2));
    await w.close();
    const bytes = sink.bytes();
    // Rename "y" to "x" in the index and in its meta's external_key, as Python writes a name twice.
    const patched = Buffer.from(bytes);
    const view = new DataView(patched.buffer, patched.byteOffset, patched.length);
    const indexStart = Number(view.getBigUint64(patched.length - 72 + 48, true));
    const second = indexStart + 2 + 1 + 36; // first record: u16 + "x" + 4 u64 + u32
    expect(String.fromCharCode(patched[second + 2]!)).toBe("y");
    patched[second + 2] = "x".charCodeAt(0);
    const metaAt = patched.indexOf('"_bigFiles/y"');
    expect(metaAt).toBeGreaterThan(0);
    patched[metaAt + 11] = "x".charCodeAt(0);
    // Python's store now holds the newer body under the one key.
    fs.copyFileSync(path.join(root, "_bigFiles", "y"), path.join(root, "_bigFiles", "x"));
    const r = await DesReader.open(new MemorySource(patched), { externalStore: store });
    expect(await r.list()).toEqual(["x"]);
    expect((await r.get("x")).length).toBe(2000);
    const v = await r.verify();
    expect(v.problems).toEqual([]);
    expect(v.entries).toBe(2);
    expect(v.ok).toBe(true);
  });
});

describe("records sharing one data range (issue 7.14)", () => {
  it("verify() inflates the shared bytes once, reports every overlap, and finishes in bounded time", async () => {
    const size = 64 * 2 ** 20;
    const stream = zlib.gzipSync(new Uint8Array(size), { level: 1 });
    const n = 1000;
    const names = Array.from({ length: n }, (_, i) => `r${String(i).padStart(4, "0")}`);
    const page = encodePage(
      names.map((name) => ({
        name: enc(name),
        flags: 0x02,
        codec: 1,
        size,
        storedSize: stream.length,
        dataOffset: 16,
        dataHash: xxh64(stream),
        externalKey: undefined,
        metaLength: 0,
        metaOffset: 0,
        metaHash: 0n,
      })),
    );
    const root = encodeRoot([page.length]);
    const indexStart = 16 + stream.length;
    const total = indexStart + page.length + root.length + 128;
    const footer = encodeV2Footer({
      pageBits: 0,
      requiredFeatures: 0,
      dataStart: 16,
      dataLength: stream.length,
      metaStart: indexStart,
      metaLength: 0,
      indexStart,
      indexLength: page.length + root.length,
      entryCount: n,
      prevFooterOffset: 0,
      archiveLength: total,
      rootHash: xxh64(root),
    });
    const r = await DesReader.open(new MemorySource(concatBytes([encodeV2Header(), stream, page, root, footer])));
    const t0 = Date.now();
    const v = await r.verify();
    expect(Date.now() - t0).toBeLessThan(20_000); // 1,000 x 64 MiB of inflation would take minutes
    expect(v.ok).toBe(false);
    expect(v.dataChecked).toBe(1);
    expect(v.problems).toHaveLength(n - 1);
    expect(v.problems.every((p) => p.code === "DES_FORMAT" && /overlaps/.test(p.message))).toBe(true);
    // A batch of them is refused before anything is inflated: 1,000 x 64 MiB is above maxBatchBytes.
    await expect(r.getMany(names)).rejects.toMatchObject({ code: "DES_INVALID_ARGUMENT" });
    expect((await r.get(names[7]!)).length).toBe(size);
  });
});

describe("external bodies are read at most declared size + 1 (issue 7.15)", () => {
  it("passes maxBytes to the store and refuses a longer body", async () => {
    const root = tempDir("des-maxbytes-");
    const store = new LocalFolderStore(root);
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, { externalStore: store, bigFileThreshold: 10 });
    await w.add("big", new Uint8Array(100).fill(7));
    await w.close();
    const asked: (number | undefined)[] = [];
    const spy: ExternalStore = {
      put: (k, b, s) => store.put(k, b, s),
      stream: (k, s, o) => store.stream(k, s, o),
      get: async (k, s, o) => {
        asked.push(o?.maxBytes);
        return store.get(k, s);
      },
    };
    const r = await DesReader.open(new MemorySource(sink.bytes()), { externalStore: spy });
    expect((await r.get("big")).length).toBe(100);
    expect(asked).toEqual([100]); // the declared size: the store reads at most one byte more
    fs.writeFileSync(path.join(root, "_bigFiles", "big"), new Uint8Array(5000));
    await expect(r.get("big")).rejects.toMatchObject({ code: "DES_EXTERNAL" });
  });
});
