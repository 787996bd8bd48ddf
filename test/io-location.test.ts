import fs from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import {
  DesReader,
  DesWriter,
  FileSource,
  FolderLocation,
  HttpLocation,
  LocalFolderStore,
  parseArchiveLocation,
  parseLocation,
} from "../src/index.js";
import { DesInvalidArgumentError } from "../src/errors.js";
import { collect, utf8 } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-io-loc-");

async function writeArchive(
  loc: FolderLocation,
  key: string,
  entries: Record<string, string>,
  opts: { overwrite?: boolean } = {},
): Promise<void> {
  const w = await DesWriter.create(await loc.sink(key, opts));
  for (const [n, v] of Object.entries(entries)) await w.add(n, utf8(v));
  await w.close();
}

describe("FolderLocation", () => {
  it("makes sinks, sources, stats, listings (in key order) and deletes under one folder", async () => {
    const loc = new FolderLocation(path.join(dir, "store"));
    expect(loc.url).toBe(path.join(dir, "store"));
    await writeArchive(loc, "2026-01-01/00.des", { a: "one" });
    await writeArchive(loc, "2026-01-01/01.des", { b: "two" });
    await writeArchive(loc, "2026-01-01-x.des", { c: "three" });
    await writeArchive(loc, "top.des", { d: "four" });
    // A sink's temporary file is never listed.
    const pending = await loc.sink("pending.des");

    const keys = [];
    for await (const e of loc.list()) keys.push(e.key);
    // UTF-8 byte order, like S3: "2026-01-01-x.des" ('-' 0x2D) sorts before "2026-01-01/..." ('/' 0x2F).
    expect(keys).toEqual(["2026-01-01-x.des", "2026-01-01/00.des", "2026-01-01/01.des", "top.des"]);
    const day = [];
    for await (const e of loc.list("2026-01-01/")) day.push(e.key);
    expect(day).toEqual(["2026-01-01/00.des", "2026-01-01/01.des"]);
    await pending.abort();

    const st = await loc.stat("top.des");
    const fst = fs.statSync(loc.pathOf("top.des"), { bigint: true });
    expect(st).toEqual({
      key: "top.des",
      size: Number(fst.size),
      version: `${fst.dev}:${fst.ino}:${fst.size}:${fst.mtimeNs}`,
    });
    expect(await loc.stat("missing.des")).toBeUndefined();
    expect(await loc.stat("2026-01-01")).toBeUndefined(); // a folder is not a key

    const src = await loc.source("2026-01-01/01.des");
    expect(src).toBeInstanceOf(FileSource);
    const r = await DesReader.open(src);
    expect(Buffer.from(await r.get("b")).toString()).toBe("two");
    await r.close();

    // child() is the same folder seen from below.
    const sub = loc.child("2026-01-01");
    expect((await sub.stat("00.des"))?.size).toBe((await loc.stat("2026-01-01/00.des"))?.size);

    // Write-once unless overwrite.
    await expect(loc.sink("top.des")).rejects.toMatchObject({ code: "DES_EXISTS" });
    await writeArchive(loc, "top.des", { d: "replaced" }, { overwrite: true });

    await loc.delete("top.des");
    await loc.delete("top.des"); // idempotent
    expect(await loc.stat("top.des")).toBeUndefined();
  });

  it("its external store lives under the folder, with keys relative to it", async () => {
    const loc = new FolderLocation(path.join(dir, "ext"));
    const store = loc.externalStore();
    expect(store).toBeInstanceOf(LocalFolderStore);
    await store.put(
      "_bigFiles/x",
      (async function* () {
        yield utf8("external body");
      })(),
    );
    expect(fs.readFileSync(path.join(dir, "ext", "_bigFiles", "x"), "utf8")).toBe("external body");
    expect(Buffer.from(await collect(store.stream("_bigFiles/x"))).toString()).toBe("external body");
  });

  it("refuses keys that climb, are absolute or have empty segments", async () => {
    const loc = new FolderLocation(dir);
    for (const bad of ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\0b"]) {
      expect(() => loc.pathOf(bad), bad).toThrow(DesInvalidArgumentError);
    }
    await expect(loc.source("../x")).rejects.toBeInstanceOf(DesInvalidArgumentError);
  });
});

describe("parseLocation (root entry)", () => {
  it("paths and file:// URLs are folders, http(s) is read-only, s3:// points to des-pack/s3", async () => {
    const a = parseLocation(dir);
    expect(a).toBeInstanceOf(FolderLocation);
    expect(a.url).toBe(path.resolve(dir));
    const b = parseLocation(pathToFileURL(dir).toString());
    expect(b.url).toBe(path.resolve(dir));
    const h = parseLocation("https://example.com/data");
    expect(h).toBeInstanceOf(HttpLocation);
    expect((h as HttpLocation).urlOf("a b/c.des")).toBe("https://example.com/data/a%20b/c.des");
    await expect(h.sink("x.des")).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
    expect(() => parseLocation("s3://bucket/x")).toThrow(/des-pack\/s3/);
    expect(() => parseLocation("ftp://host/x")).toThrow(DesInvalidArgumentError);

    const { location, key } = parseArchiveLocation(path.join(dir, "store", "top.des"));
    expect(key).toBe("top.des");
    expect(location.url).toBe(path.join(dir, "store"));
    const u = parseArchiveLocation("https://example.com/d/x%20y.des");
    expect(u.key).toBe("x y.des");
    expect(u.location.url).toBe("https://example.com/d/");
  });
});

describe("LocalFolderStore reads at most the declared size + 1 (issue 7 item 15)", () => {
  it("a small declared size pointing at a big file fails without reading it; exact sizes read", async () => {
    const root = path.join(dir, "bounded");
    fs.mkdirSync(path.join(root, "_bigFiles"), { recursive: true });
    fs.writeFileSync(path.join(root, "_bigFiles", "big"), new Uint8Array(32 << 20));
    fs.writeFileSync(path.join(root, "_bigFiles", "ten"), utf8("0123456789"));
    const store = new LocalFolderStore(root);
    const rss0 = process.memoryUsage().arrayBuffers;
    await expect(store.get("_bigFiles/big", undefined, { maxBytes: 10 })).rejects.toMatchObject({
      code: "DES_EXTERNAL",
      message: expect.stringMatching(/33554432 bytes, more than the 10 expected/),
    });
    expect(process.memoryUsage().arrayBuffers - rss0).toBeLessThan(16 << 20);
    expect(Buffer.from(await store.get("_bigFiles/ten", undefined, { maxBytes: 10 })).toString()).toBe("0123456789");
    await expect(store.get("_bigFiles/ten", undefined, { maxBytes: 9 })).rejects.toMatchObject({
      code: "DES_EXTERNAL",
    });
    await expect(collect(store.stream("_bigFiles/big", undefined, { maxBytes: 10 }))).rejects.toMatchObject({
      code: "DES_EXTERNAL",
    });
    expect((await collect(store.stream("_bigFiles/ten", undefined, { maxBytes: 10 }))).length).toBe(10);
    await expect(store.get("_bigFiles/ten", undefined, { maxBytes: -1 })).rejects.toMatchObject({
      code: "DES_INVALID_ARGUMENT",
    });
  });

  it("a file whose stat size is 0 but which has content is read to EOF, still bounded", async () => {
    if (!fs.existsSync("/proc/self/status")) return;
    const root = path.join(dir, "procfs");
    fs.mkdirSync(root, { recursive: true });
    fs.symlinkSync("/proc/self/status", path.join(root, "status"));
    expect(fs.statSync(path.join(root, "status")).size).toBe(0);
    const store = new LocalFolderStore(root);
    const body = Buffer.from(await store.get("status")).toString();
    expect(body).toMatch(/^Name:/);
    await expect(store.get("status", undefined, { maxBytes: 5 })).rejects.toMatchObject({
      code: "DES_EXTERNAL",
      message: expect.stringMatching(/longer than the 5 bytes/),
    });
  });

  it("a FIFO in a body's place is refused at once", async () => {
    const root = path.join(dir, "fifo");
    fs.mkdirSync(root, { recursive: true });
    execFileSync("mkfifo", [path.join(root, "p")]);
    await expect(new LocalFolderStore(root).get("p")).rejects.toMatchObject({
      code: "DES_EXTERNAL",
      message: expect.stringMatching(/not a regular file/),
    });
  });
});

describe("HttpLocation (read-only, against a loopback server with Range support)", () => {
  it("sources read archives, stat is a HEAD, the external store reads bounded bodies, writes are refused", async () => {
    const { createServer } = await import("node:http");
    const root = path.join(dir, "served");
    const loc0 = new FolderLocation(root);
    const w = await DesWriter.create(await loc0.sink("sub/a.des"));
    await w.add("hello", utf8("hello over http"));
    await w.close();
    fs.mkdirSync(path.join(root, "sub", "_bigFiles"), { recursive: true });
    fs.writeFileSync(path.join(root, "sub", "_bigFiles", "big"), new Uint8Array(5000).fill(5));
    const server = createServer((req, res) => {
      const file = path.join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return void res.writeHead(404).end();
      const all = fs.readFileSync(file);
      const etag = `"${fs.statSync(file).mtimeMs}"`;
      if (req.method === "HEAD") return void res.writeHead(200, { "content-length": all.length, etag }).end();
      const m = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ""));
      if (!m) return void res.writeHead(200, { "content-length": all.length, etag }).end(all);
      const start = m[1] === "" ? Math.max(0, all.length - Number(m[2])) : Number(m[1]);
      const end = m[1] === "" || m[2] === "" ? all.length - 1 : Math.min(Number(m[2]), all.length - 1);
      res
        .writeHead(206, {
          "content-range": `bytes ${start}-${end}/${all.length}`,
          "content-length": end - start + 1,
          etag,
        })
        .end(all.subarray(start, end + 1));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/sub`;
      const loc = parseLocation(base);
      expect(loc).toBeInstanceOf(HttpLocation);
      const r = await DesReader.open(await loc.source("a.des"));
      expect(Buffer.from(await r.get("hello")).toString()).toBe("hello over http");
      await r.close();
      expect((await loc.stat("a.des"))?.size).toBe(fs.statSync(path.join(root, "sub", "a.des")).size);
      expect(await loc.stat("nope.des")).toBeUndefined();
      const store = loc.externalStore();
      expect((await store.get("_bigFiles/big", undefined, { maxBytes: 5000 })).length).toBe(5000);
      await expect(store.get("_bigFiles/big", undefined, { maxBytes: 4999 })).rejects.toMatchObject({
        code: "DES_EXTERNAL",
        message: expect.stringMatching(/5000 bytes, more than the 4999/),
      });
      await expect(store.get("_bigFiles/none")).rejects.toMatchObject({ code: "DES_EXTERNAL" });
      await expect(loc.sink("b.des")).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
      await expect(loc.delete("a.des")).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
      await expect(store.put("k", (async function* () {})())).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
      await expect(
        (async () => {
          for await (const e of loc.list()) void e;
        })(),
      ).rejects.toMatchObject({ code: "DES_UNSUPPORTED" });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
