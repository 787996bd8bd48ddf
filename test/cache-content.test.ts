import fs from "node:fs";
import path from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3DesReader } from "../src/s3/index.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";
import { DesInvalidArgumentError } from "../src/errors.js";
import { DesReader } from "../src/read/reader.js";
import { MemorySink } from "../src/sinks/memory.js";
import { DesWriter } from "../src/write/writer.js";
import { bodyOf } from "./helpers/data.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-content-");
const N = 400;
const name = (i: number): string => `c/${i}`;
const size = (i: number): number => (i === 0 ? 200_000 : 100 + ((i * 37) % 3000));

async function write(file: string, gen: number): Promise<void> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(name(i), bodyOf(i, size(i), gen));
  });
  fs.writeFileSync(file, sink.bytes());
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe("contentCache (hot entries)", () => {
  it("is off by default: every get reads the data", async () => {
    const file = path.join(dir, "off.des");
    await write(file, 1);
    const r = await DesReader.open(file);
    await r.get(name(5));
    const before = r.ioStats.requests;
    await r.get(name(5));
    expect(r.ioStats.requests - before).toBe(1);
    await r.close();
  });

  it("repeated reads of a small entry make no request; callers get their own copy", async () => {
    const file = path.join(dir, "on.des");
    await write(file, 1);
    const r = await DesReader.open(file, { contentCache: { maxBytes: 1 << 20 } });
    const a = await r.get(name(5));
    expect(same(a, bodyOf(5, size(5), 1))).toBe(true);
    a.fill(0); // must not reach the cache
    await r.stat(name(6)); // its index page, so that only bodies are counted below
    const before = r.ioStats.requests;
    const b = await r.get(name(5));
    const many = await r.getMany([name(5), name(6)]);
    expect(r.ioStats.requests - before).toBe(1); // name(6) only
    expect(same(b, bodyOf(5, size(5), 1))).toBe(true);
    expect(same(many.get(name(5))!, bodyOf(5, size(5), 1))).toBe(true);
    // An entry above maxEntryBytes (default min(64 KiB, maxBytes / 16)) is always read.
    await r.get(name(0));
    const b0 = r.ioStats.requests;
    expect(same(await r.get(name(0)), bodyOf(0, size(0), 1))).toBe(true);
    expect(r.ioStats.requests - b0).toBe(1);
    await r.close();
  });

  it("stays within maxBytes", async () => {
    const file = path.join(dir, "bound.des");
    await write(file, 1);
    const r = await DesReader.open(file, { contentCache: { maxBytes: 20_000, maxEntryBytes: 4000 } });
    for (let i = 1; i < N; i++) await r.get(name(i));
    // The last few are still cached, the first ones were evicted.
    const before = r.ioStats.requests;
    await r.get(name(N - 1));
    expect(r.ioStats.requests - before).toBe(0);
    await r.get(name(1));
    expect(r.ioStats.requests - before).toBe(1);
    await r.close();
  });

  it("refuses a bad budget with a typed error", async () => {
    const file = path.join(dir, "on.des");
    await expect(DesReader.open(file, { contentCache: { maxBytes: 0 } })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
  });
});

describe("contentCache and a replaced archive (S3)", () => {
  let moto: Moto | undefined;
  let direct: S3Client;
  const BUCKET = `des-content-${Date.now().toString(36)}-${process.pid}`;

  beforeAll(async () => {
    moto = await startMoto();
    direct = new S3Client(s3Config(moto.endpoint));
    await ensureBucket(direct, BUCKET);
  }, 120_000);

  afterAll(async () => {
    direct?.destroy();
    await moto?.stop();
  });

  async function put(gen: number): Promise<void> {
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      for (let i = 0; i < N; i++) await w.add(name(i), bodyOf(i, size(i), gen));
    });
    await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: "hot.des", Body: sink.bytes() }));
  }

  it("drops every cached body when the archive is reopened after a change", async () => {
    await put(1);
    const { client, counter } = countingClient(moto!.endpoint);
    const r = await S3DesReader.open(
      { client, bucket: BUCKET, key: "hot.des" },
      { contentCache: { maxBytes: 1 << 20 } },
    );
    expect(same(await r.get(name(7)), bodyOf(7, size(7), 1))).toBe(true);
    counter.reset();
    expect(same(await r.get(name(7)), bodyOf(7, size(7), 1))).toBe(true);
    expect(counter.total).toBe(0);
    await put(2);
    // A read that goes to S3 gets 412 (If-Match) and reopens; the hot entry then comes from the new archive.
    expect(same(await r.get(name(8)), bodyOf(8, size(8), 2))).toBe(true);
    expect(same(await r.get(name(7)), bodyOf(7, size(7), 2))).toBe(true);
    await r.close();
    client.destroy();
  });
});
