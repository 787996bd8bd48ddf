import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesReader, DesWriter, FolderLocation } from "../src/index.js";
import { S3ExternalStore, S3Location, S3Source, parseArchiveLocation, parseLocation } from "../src/s3/index.js";
import { collect, utf8 } from "./helpers/archives.js";
import { startFaultProxy } from "./helpers/fault-proxy.js";
import type { FaultProxy } from "./helpers/fault-proxy.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";

const BUCKET = `des-io-${Date.now().toString(36)}-${process.pid}`;
const MIB = 1 << 20;

let moto: Moto | undefined;
let proxy: FaultProxy | undefined;
let client: S3Client;
/** Through the counting proxy. */
let counted: S3Client;
/** Through a proxy that drops every Range header (a server that ignores Range). */
let rangeless: S3Client;
let rangelessServer: http.Server | undefined;
let rangelessSent = 0;

beforeAll(async () => {
  moto = await startMoto();
  client = new S3Client(s3Config(moto.endpoint));
  await ensureBucket(client, BUCKET);
  proxy = await startFaultProxy(moto.endpoint);
  counted = new S3Client(s3Config(proxy.endpoint));
  const upstream = new URL(moto.endpoint);
  rangelessServer = http.createServer((req, res) => {
    const headers = { ...req.headers };
    delete headers.range;
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (r) => {
        res.writeHead(r.statusCode ?? 500, r.headers);
        r.on("data", (c: Buffer) => {
          rangelessSent += c.length;
        });
        r.pipe(res);
        res.on("close", () => r.destroy());
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => rangelessServer!.listen(0, "127.0.0.1", r));
  rangeless = new S3Client(s3Config(`http://127.0.0.1:${(rangelessServer.address() as AddressInfo).port}`));
}, 60_000);

afterAll(async () => {
  rangelessServer?.closeAllConnections();
  await new Promise<void>((r) => (rangelessServer ? rangelessServer.close(() => r()) : r()));
  await proxy?.close();
  await moto?.stop();
});

async function put(key: string, body: Uint8Array): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

describe("S3Location (against moto)", () => {
  it("sinks (write-once), sources, stat, list in key order, child, delete, all relative to the prefix", async () => {
    const loc = new S3Location({ client, bucket: BUCKET, prefix: "stores/a" });
    expect(loc.url).toBe(`s3://${BUCKET}/stores/a`);
    expect(loc.prefix).toBe("stores/a/");
    for (const key of ["2026-01-01/00.des", "2026-01-01/01.des", "2026-01-01-x.des"]) {
      const sink = await loc.sink(key);
      const w = await DesWriter.create(sink);
      await w.add("name", utf8(`in ${key}`));
      await w.close();
      // S3Sink.bytesWritten is the object's size.
      expect(sink.bytesWritten).toBe((await loc.stat(key))?.size);
    }
    await expect(loc.sink("2026-01-01/00.des")).rejects.toMatchObject({ code: "DES_EXISTS" });
    // Same key order as a folder location: UTF-8 bytes.
    const keys = [];
    for await (const e of loc.list()) keys.push(e.key);
    expect(keys).toEqual(["2026-01-01-x.des", "2026-01-01/00.des", "2026-01-01/01.des"]);
    const day = [];
    for await (const e of loc.child("2026-01-01").list()) day.push(e);
    expect(day.map((e) => e.key)).toEqual(["00.des", "01.des"]);
    const st = await loc.stat("2026-01-01/01.des");
    expect(st?.size).toBe(day[1]!.size);
    expect(st?.version).toMatch(/^"[0-9a-f]+"$/);
    expect(await loc.stat("nope.des")).toBeUndefined();

    const src = await loc.source("2026-01-01/01.des");
    expect(src).toBeInstanceOf(S3Source);
    expect(src.key).toBe(`s3://${BUCKET}/stores/a/2026-01-01/01.des`);
    const r = await DesReader.open(src);
    expect(Buffer.from(await r.get("name")).toString()).toBe("in 2026-01-01/01.des");
    await r.close();

    await loc.delete("2026-01-01-x.des");
    await loc.delete("2026-01-01-x.des");
    expect(await loc.stat("2026-01-01-x.des")).toBeUndefined();
  });

  it("lists past one ListObjectsV2 page", async () => {
    const { client: c, counter } = countingClient(moto!.endpoint);
    const loc = new S3Location({ client: c, bucket: BUCKET, prefix: "many", listPageSize: 10 });
    const names = Array.from({ length: 35 }, (_, i) => `k${String(i).padStart(4, "0")}`);
    await Promise.all(names.map((n) => put(`many/${n}`, utf8(n))));
    const got = [];
    for await (const e of loc.list()) got.push(e.key);
    expect(got).toEqual(names);
    expect(counter.byCommand.ListObjectsV2Command).toBe(4);
  });

  it("its external store keeps keys relative to the location", async () => {
    const loc = new S3Location({ client, bucket: BUCKET, prefix: "ext" });
    const store = loc.externalStore();
    await store.put(
      "_bigFiles/x",
      (async function* () {
        yield utf8("external body");
      })(),
    );
    const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "ext/_bigFiles/x" }));
    expect(await out.Body!.transformToString()).toBe("external body");
    expect(Buffer.from(await store.get("_bigFiles/x")).toString()).toBe("external body");
  });

  it("parseLocation of des-pack/s3 knows s3://, paths and http(s)", () => {
    const s = parseLocation(`s3://${BUCKET}/x/y/`, { client });
    expect(s).toBeInstanceOf(S3Location);
    expect(s.url).toBe(`s3://${BUCKET}/x/y`);
    expect(parseLocation(`s3://${BUCKET}`, { client }).url).toBe(`s3://${BUCKET}/`);
    expect(parseLocation("/tmp")).toBeInstanceOf(FolderLocation);
    const a = parseArchiveLocation(`s3://${BUCKET}/dir/a.des`, { client });
    expect(a.key).toBe("a.des");
    expect(a.location.url).toBe(`s3://${BUCKET}/dir`);
    expect(() => parseArchiveLocation(`s3://${BUCKET}/`, { client })).toThrow(/bucket, not an archive/);
  });
});

describe("external bodies read at most the declared size + 1 (issue 7 item 15)", () => {
  it("S3: a Range GET bytes=0-<maxBytes>; a larger object fails from its Content-Range before the body is read", async () => {
    await put("big/huge.bin", new Uint8Array(8 * MIB).fill(9));
    const store = new S3ExternalStore({ client: counted, bucket: BUCKET });
    proxy!.reset();
    await expect(store.get("big/huge.bin", undefined, { maxBytes: 10 })).rejects.toMatchObject({
      code: "DES_EXTERNAL",
      message: expect.stringMatching(/8388608 bytes, more than the 10 expected/),
    });
    expect(proxy!.stats.ranges).toEqual(["bytes=0-10"]);
    expect(proxy!.stats.bytesOut).toBeLessThanOrEqual(11);
    // Exactly the declared size is fine; one byte less is refused.
    await put("big/exact.bin", utf8("0123456789"));
    expect(Buffer.from(await store.get("big/exact.bin", undefined, { maxBytes: 10 })).toString()).toBe("0123456789");
    await expect(store.get("big/exact.bin", undefined, { maxBytes: 9 })).rejects.toMatchObject({
      code: "DES_EXTERNAL",
    });
    // An empty object with maxBytes 0.
    await put("big/empty.bin", new Uint8Array(0));
    expect((await store.get("big/empty.bin", undefined, { maxBytes: 0 })).length).toBe(0);
    expect((await collect(store.stream("big/exact.bin", undefined, { maxBytes: 100 }))).length).toBe(10);
  });
});

describe("an S3-compatible server that ignores Range (issue 7 item 16)", () => {
  it("S3Source reads only up to the end of the range asked for, or fails with requireRanges", async () => {
    const big = new Uint8Array(32 * MIB);
    for (let i = 0; i < big.length; i += 1024) big[i] = (i >> 10) & 0xff;
    await put("rangeless/big.bin", big);
    const src = new S3Source({ client: rangeless, bucket: BUCKET, key: "rangeless/big.bin" });
    rangelessSent = 0;
    const got = await src.read(5 * 1024, 2048);
    expect(got[0]).toBe(5);
    expect(got[1024]).toBe(6);
    expect(got.length).toBe(2048);
    expect(src.stats.bytes).toBeLessThan(1 * MIB);
    await new Promise((r) => setTimeout(r, 100));
    expect(rangelessSent).toBeLessThan(16 * MIB);
    const strict = new S3Source(
      { client: rangeless, bucket: BUCKET, key: "rangeless/big.bin" },
      { requireRanges: true },
    );
    await expect(strict.read(0, 10)).rejects.toMatchObject({
      code: "DES_IO",
      message: expect.stringMatching(/ignores Range/),
    });
  });
});

describe("S3 timeouts (issue 7 item 10)", () => {
  it("an endpoint that accepts and never answers: DES_IO after the retries, without any signal", async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(hole.address() as AddressInfo).port}`;
    const c = new S3Client(s3Config(endpoint, { maxAttempts: 1 }));
    try {
      const src = new S3Source(
        { client: c, bucket: BUCKET, key: "x.des" },
        { responseTimeoutMs: 300, bodyRetries: 1, retryBaseMs: 1 },
      );
      const t0 = Date.now();
      await expect(DesReader.open(src)).rejects.toMatchObject({
        code: "DES_IO",
        message: expect.stringMatching(/no response within 300 ms.*gave up after 2 GETs/),
      });
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(src.stats.requests).toBe(2);
      const store = new S3ExternalStore({ client: c, bucket: BUCKET, responseTimeoutMs: 300, bodyRetries: 0 });
      await expect(store.get("k")).rejects.toMatchObject({
        code: "DES_EXTERNAL",
        message: expect.stringMatching(/no response within 300 ms/),
      });
    } finally {
      for (const s of sockets) s.destroy();
      c.destroy();
      await new Promise<void>((r) => hole.close(() => r()));
    }
  });
});
