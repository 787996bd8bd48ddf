import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DesDuplicateError,
  DesExistsError,
  DesInvalidArgumentError,
  DesIoError,
  DesReader,
  DesWriter,
  LocalFolderStore,
  MemorySink,
  MemorySource,
} from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));
}

describe("DesWriter targets and crash safety", () => {
  const dir = tempDir();

  it("writes to a temporary name and renames on close", async () => {
    const target = path.join(dir, "a.des");
    const w = await DesWriter.create(target);
    await w.add("x", enc("hello"));
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers(dir).length).toBe(1);
    const stats = await w.close();
    expect(fs.existsSync(target)).toBe(true);
    expect(leftovers(dir)).toEqual([]);
    expect(stats.archiveBytes).toBe(fs.statSync(target).size);
    expect(stats.entries).toBe(1);
    const r = await DesReader.open(target);
    expect(dec(await r.get("x"))).toBe("hello");
    await r.close();
  });

  it("refuses to overwrite an existing archive unless told to", async () => {
    const target = path.join(dir, "exists.des");
    fs.writeFileSync(target, "old");
    await expect(DesWriter.create(target)).rejects.toBeInstanceOf(DesExistsError);
    const w = await DesWriter.create(target, { overwrite: true });
    await w.add("x", enc("new"));
    await w.close();
    const r = await DesReader.open(target);
    expect(dec(await r.get("x"))).toBe("new");
    await r.close();
    expect(leftovers(dir)).toEqual([]);
  });

  it("refuses at close when the target appeared meanwhile, leaving it untouched", async () => {
    const target = path.join(dir, "race.des");
    const w = await DesWriter.create(target);
    await w.add("x", enc("mine"));
    fs.writeFileSync(target, "theirs");
    await expect(w.close()).rejects.toBeInstanceOf(DesExistsError);
    expect(fs.readFileSync(target, "utf8")).toBe("theirs");
    expect(leftovers(dir)).toEqual([]);
  });

  it("abort() leaves no file at the target and no temporary", async () => {
    const target = path.join(dir, "aborted.des");
    const w = await DesWriter.create(target);
    await w.add("x", new Uint8Array(3 << 20));
    await w.abort();
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    await expect(w.add("y", enc("late"))).rejects.toBeInstanceOf(DesIoError);
  });

  it("an exception inside DesWriter.write() aborts the archive", async () => {
    const target = path.join(dir, "thrown.des");
    await expect(
      DesWriter.write(target, {}, async (w) => {
        await w.add("x", enc("1"));
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  it("a body stream that fails mid-way fails the writer; nothing is committed", async () => {
    const target = path.join(dir, "badstream.des");
    const w = await DesWriter.create(target);
    await w.add("ok", enc("fine"));
    const failing = Readable.from(
      (async function* () {
        yield enc("partial");
        throw new Error("disk gone");
      })(),
    );
    await expect(w.add("bad", failing)).rejects.toBeInstanceOf(DesIoError);
    await expect(w.add("after", enc("x"))).rejects.toBeInstanceOf(DesIoError);
    await expect(w.close()).rejects.toBeInstanceOf(DesIoError);
    await w.abort();
    expect(fs.existsSync(target)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  it("a killed writer process leaves the target absent, and an older archive intact", async () => {
    const target = path.join(dir, "killed.des");
    const old = await DesWriter.create(target);
    await old.add("v", enc("old"));
    await old.close();
    const before = fs.readFileSync(target);
    const script = path.join(dir, "child.mts");
    const entry = path.resolve("src/index.ts");
    fs.writeFileSync(
      script,
      `import { DesWriter } from ${JSON.stringify(entry)};
const w = await DesWriter.create(process.argv[2], { overwrite: true });
for (let i = 0; ; i++) {
  await w.add("e" + i, new Uint8Array(4096).fill(i & 255));
  if (i === 2000) process.stdout.write("ready\\n");
}
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script, target], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`child exited early with ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    expect(fs.readFileSync(target).equals(before)).toBe(true);
    const r = await DesReader.open(target);
    expect(dec(await r.get("v"))).toBe("old");
    await r.close();
    // The killed process's temporary is recognisable (dot-prefixed, .tmp) and can be removed.
    for (const f of leftovers(dir)) fs.rmSync(path.join(dir, f));
  }, 60_000);
});

describe("DesWriter inputs and rules", () => {
  const dir = tempDir();

  it("accepts bytes, Readable, async iterables and file paths", async () => {
    const file = path.join(dir, "input.bin");
    fs.writeFileSync(
      file,
      new Uint8Array(300_000).map((_, i) => i * 7),
    );
    const big = path.join(dir, "big.bin");
    fs.writeFileSync(
      big,
      new Uint8Array(3_000_000).map((_, i) => i * 13),
    );
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.add("bytes", enc("abc"));
    await w.add("readable", Readable.from([Buffer.from("de"), Buffer.from("f")]));
    await w.add(
      "iterable",
      (async function* () {
        yield enc("gh");
        yield enc("i");
      })(),
    );
    await w.add("file", { path: file });
    await w.addFile("bigfile", big, { compress: "gzip" });
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(dec(await r.get("bytes"))).toBe("abc");
    expect(dec(await r.get("readable"))).toBe("def");
    expect(dec(await r.get("iterable"))).toBe("ghi");
    expect(Buffer.from(await r.get("file")).equals(fs.readFileSync(file))).toBe(true);
    expect(Buffer.from(await r.get("bigfile")).equals(fs.readFileSync(big))).toBe(true);
    expect((await r.stat("bigfile")).compression).toBe("gzip");
  });

  it("refuses a duplicate name in v2 and stays usable", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    await w.add("a", enc("1"));
    await expect(w.add("a", enc("2"))).rejects.toBeInstanceOf(DesDuplicateError);
    await w.add("b", enc("3"));
    const stats = await w.close();
    expect(stats.entries).toBe(2);
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(dec(await r.get("a"))).toBe("1");
  });

  it("detects duplicates among many names (hash table growth)", async () => {
    const w = await DesWriter.create(new MemorySink());
    for (let i = 0; i < 20_000; i++) await w.add(`n${i}`, new Uint8Array(0));
    for (const i of [0, 4095, 4096, 19_999])
      await expect(w.add(`n${i}`, new Uint8Array(0))).rejects.toBeInstanceOf(DesDuplicateError);
    await w.abort();
  });

  it.each([
    ["empty", ""],
    ["NUL", "a\0b"],
    ["too long", "x".repeat(65_536)],
    ["lone surrogate", "a\ud800"],
  ])("refuses a name that is %s", async (_label, name) => {
    const w = await DesWriter.create(new MemorySink());
    await expect(w.add(name, enc("x"))).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await w.add("fine", enc("x"));
    await w.close();
  });

  it("accepts a name of exactly 65535 UTF-8 bytes", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    const name = "é".repeat(32_767) + "a"; // 65,535 bytes
    await w.add(name, enc("long"));
    await w.close();
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    expect(dec(await r.get(name))).toBe("long");
  });

  it("is reproducible: the same adds give identical bytes", async () => {
    const build = async (): Promise<Uint8Array> => {
      const sink = new MemorySink();
      const w = await DesWriter.create(sink);
      for (let i = 0; i < 3000; i++) {
        await w.add(`dir/${i % 7}/file-${i}.txt`, enc(`content ${i} `.repeat(i % 50)), {
          meta: { i, tags: ["a", i % 3], big: BigInt(i) * 10n ** 15n },
          compress: i % 3 === 0 ? "gzip" : i % 3 === 1 ? "brotli" : "none",
        });
      }
      await w.close();
      return sink.bytes();
    };
    const a = await build();
    const b = await build();
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it("sends bodies above the threshold to the external store and records the key", async () => {
    const store = new LocalFolderStore(path.join(dir, "ext"));
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, { externalStore: store, bigFileThreshold: 1000, externalPrefix: "day" });
    await w.add("small", new Uint8Array(1000).fill(1));
    await w.add("large", new Uint8Array(1001).fill(2), { meta: { kind: "big" } });
    const stats = await w.close();
    expect(stats.externalEntries).toBe(1);
    expect(fs.readFileSync(path.join(dir, "ext", "day", "_bigFiles", "large")).length).toBe(1001);
    const r = await DesReader.open(new MemorySource(sink.bytes()), { externalStore: store });
    const st = await r.stat("large");
    expect(st).toMatchObject({ external: true, externalKey: "day/_bigFiles/large", size: 1001, offset: 0 });
    expect((await r.get("large")).every((b) => b === 2)).toBe(true);
    expect(await r.getMeta("large")).toEqual({ kind: "big" });
    expect((await r.verify()).ok).toBe(true);
    // A tampered external body is caught by its checksum.
    fs.writeFileSync(path.join(dir, "ext", "day", "_bigFiles", "large"), new Uint8Array(1001).fill(3));
    await expect(r.get("large")).rejects.toMatchObject({ code: "DES_CHECKSUM" });
  });

  it("keeps pages at most 64 KiB and answers a cold lookup with one page read", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink);
    const n = 60_000;
    for (let i = 0; i < n; i++)
      await w.add(`photos/2025/01/15/camera-${i % 17}/IMG_${String(i).padStart(8, "0")}.jpg`, enc(String(i)));
    const stats = await w.close();
    expect(stats.indexPages).toBeGreaterThan(16);
    const src = new MemorySource(sink.bytes());
    const r = await DesReader.open(src);
    expect(src.stats.reads).toBe(1);
    const name = `photos/2025/01/15/camera-${12345 % 17}/IMG_00012345.jpg`;
    const readsBefore = src.stats.reads;
    const bytesBefore = src.stats.bytesRead;
    expect(dec(await r.get(name))).toBe("12345");
    expect(src.stats.reads - readsBefore).toBe(2); // one index page + the data
    expect(src.stats.bytesRead - bytesBefore).toBeLessThanOrEqual(65_536 + 5);
  });
});

describe("meta larger than the memory limit", () => {
  it("spills to a temporary file and still round-trips every meta", async () => {
    const sink = new MemorySink();
    const w = await DesWriter.create(sink, { metaMemoryLimit: 64 * 1024 });
    for (let i = 0; i < 2000; i++)
      await w.add(`m${i}`, enc(String(i)), { meta: { i, pad: "p".repeat(200 + (i % 50)) } });
    const stats = await w.close();
    expect(stats.metaBytes).toBeGreaterThan(3 * 64 * 1024);
    const r = await DesReader.open(new MemorySource(sink.bytes()));
    const metas = await r.getMetaMany(Array.from({ length: 2000 }, (_, i) => `m${i}`));
    for (let i = 0; i < 2000; i++) expect(metas.get(`m${i}`)).toEqual({ i, pad: "p".repeat(200 + (i % 50)) });
    expect((await r.verify()).ok).toBe(true);
  });
});
