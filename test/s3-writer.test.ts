import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesExistsError, DesFormatError, DesIoError } from "../src/errors.js";
import { DesWriter } from "../src/write/writer.js";
import { S3DesReader, S3ExternalStore, S3Sink, createS3Writer, uploadArchive } from "../src/s3/index.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto, RequestCounter } from "./helpers/moto.js";
import { bodyOf } from "./helpers/data.js";

// Unique per run, so a shared server (DES_TEST_S3_ENDPOINT) never sees leftovers of an earlier run.
const BUCKET = `des-writer-${Date.now().toString(36)}-${process.pid}`;
const MIB = 1 << 20;

let moto: Moto | undefined;
let client: S3Client;
let counter: RequestCounter;
let tmp: string;

beforeAll(async () => {
  moto = await startMoto();
  ({ client, counter } = countingClient(moto.endpoint));
  await ensureBucket(client, BUCKET);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "des-s3-writer-"));
});

afterAll(async () => {
  client?.destroy();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await moto?.stop();
});

async function exists(key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function openUploads(): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return (out.Uploads ?? []).map((u) => u.Key ?? "");
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** 30 entries of ~700 KiB: about 21 MiB, three 8 MiB parts. */
async function fillBig(w: DesWriter): Promise<void> {
  for (let i = 0; i < 30; i++) await w.add(`e${i}`, bodyOf(i, 700 * 1024 + i), { meta: { i } });
}

describe("createS3Writer", () => {
  it("streams a multipart archive straight to S3, then a one-GET open reads it back", async () => {
    counter.reset();
    const w = await createS3Writer({ client, bucket: BUCKET, key: "w/big.des" });
    await fillBig(w);
    const stats = await w.close();
    expect(stats.archiveBytes).toBeGreaterThan(16 * MIB);
    expect(counter.byCommand["CreateMultipartUploadCommand"]).toBe(1);
    expect(counter.byCommand["UploadPartCommand"]).toBe(Math.ceil(stats.archiveBytes / (8 * MIB)));
    expect(counter.byCommand["CompleteMultipartUploadCommand"]).toBe(1);
    expect(counter.byCommand["PutObjectCommand"]).toBeUndefined();
    // The verification after upload is one GET of the tail.
    expect(counter.byCommand["GetObjectCommand"]).toBe(1);
    expect(await openUploads()).toEqual([]);
    const r = await S3DesReader.open({ client, bucket: BUCKET, key: "w/big.des" });
    expect(r.size).toBe(stats.archiveBytes);
    const got = await r.getMany(Array.from({ length: 30 }, (_, i) => `e${i}`));
    for (let i = 0; i < 30; i++)
      expect(Buffer.from(got.get(`e${i}`)!).equals(Buffer.from(bodyOf(i, 700 * 1024 + i)))).toBe(true);
    expect(await r.getMeta("e7")).toEqual({ i: 7 });
    expect((await r.verify()).ok).toBe(true);
  });

  it("a small archive goes up as one conditional PutObject", async () => {
    counter.reset();
    const w = await createS3Writer({ client, bucket: BUCKET, key: "w/small.des" }, { format: 1 });
    await w.add("a.txt", new TextEncoder().encode("hello"), { meta: { k: "v" } });
    await w.close();
    expect(counter.byCommand["PutObjectCommand"]).toBe(1);
    expect(counter.byCommand["CreateMultipartUploadCommand"]).toBeUndefined();
    const r = await S3DesReader.open({ client, bucket: BUCKET, key: "w/small.des" });
    expect(r.formatVersion).toBe(1);
    expect(new TextDecoder().decode(await r.get("a.txt"))).toBe("hello");
  });

  it("is write-once: an existing key fails fast with DesExistsError and is untouched", async () => {
    const before = await objectBytes("w/small.des");
    await expect(createS3Writer({ client, bucket: BUCKET, key: "w/small.des" })).rejects.toBeInstanceOf(DesExistsError);
    expect((await objectBytes("w/small.des")).equals(before)).toBe(true);
  });

  it("a key that appears during a multipart upload is not overwritten (If-None-Match on complete)", async () => {
    const key = "w/race-multipart.des";
    const w = await createS3Writer({ client, bucket: BUCKET, key });
    await fillBig(w);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "someone else" }));
    await expect(w.close()).rejects.toBeInstanceOf(DesExistsError);
    expect((await objectBytes(key)).toString()).toBe("someone else");
    expect(await openUploads()).toEqual([]);
  });

  it("a key that appears during a single-part upload is not overwritten (If-None-Match on put)", async () => {
    const key = "w/race-single.des";
    const w = await createS3Writer({ client, bucket: BUCKET, key });
    await w.add("x", bodyOf(1, 1000));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "someone else" }));
    await expect(w.close()).rejects.toBeInstanceOf(DesExistsError);
    expect((await objectBytes(key)).toString()).toBe("someone else");
  });

  it("overwrite: true replaces an existing archive", async () => {
    const key = "w/replace.des";
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "old" }));
    const w = await createS3Writer({ client, bucket: BUCKET, key, overwrite: true });
    await w.add("x", bodyOf(2, 1000));
    await w.close();
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    expect(Buffer.from(await r.get("x")).equals(Buffer.from(bodyOf(2, 1000)))).toBe(true);
  });

  it("abort() after parts were uploaded leaves no object and no multipart upload", async () => {
    const key = "w/aborted.des";
    counter.reset();
    const w = await createS3Writer({ client, bucket: BUCKET, key });
    await fillBig(w);
    // Parts are on their way (at least the multipart upload exists).
    for (let t = 0; t < 100 && !counter.byCommand["UploadPartCommand"]; t++)
      await new Promise((r) => setTimeout(r, 20));
    expect(counter.byCommand["CreateMultipartUploadCommand"]).toBe(1);
    await w.abort();
    expect(await exists(key)).toBe(false);
    expect(await openUploads()).toEqual([]);
    expect(counter.byCommand["AbortMultipartUploadCommand"]).toBeGreaterThanOrEqual(1);
    expect(counter.byCommand["CompleteMultipartUploadCommand"]).toBeUndefined();
  });

  it("abort() before the first part leaves nothing at all", async () => {
    const key = "w/aborted-early.des";
    const w = await createS3Writer({ client, bucket: BUCKET, key });
    await w.add("x", bodyOf(3, 1000));
    await w.abort();
    await w.abort();
    expect(await exists(key)).toBe(false);
    expect(await openUploads()).toEqual([]);
  });

  it("memory stays bounded: writes wait while parts upload (queueSize 2, 8 MiB parts)", async () => {
    const { client: slow } = countingClient(moto!.endpoint);
    let completed = 0;
    let maxAhead = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    // Assigned below, after the middleware that reads it is installed.
    // eslint-disable-next-line prefer-const
    let sink: S3Sink | undefined;
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== "UploadPartCommand") return next(args);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        maxAhead = Math.max(maxAhead, (sink?.bytesWritten ?? 0) - completed);
        await new Promise((r) => setTimeout(r, 250));
        try {
          return await next(args);
        } finally {
          inFlight--;
          completed += (args.input as { Body: Uint8Array }).Body.length;
        }
      },
      { step: "initialize", name: "slowParts" },
    );
    sink = await S3Sink.create({ client: slow, bucket: BUCKET, key: "w/bounded.des" });
    const w = await DesWriter.create(sink);
    let written = 0;
    for (let i = 0; written < 64 * MIB; i++) {
      const b = bodyOf(i, MIB + 17);
      await w.add(`b${i}`, b);
      written += b.length;
      maxAhead = Math.max(maxAhead, sink.bytesWritten - completed);
    }
    await w.close();
    slow.destroy();
    expect(maxInFlight).toBeLessThanOrEqual(2);
    // Two parts in flight, one being cut, and the 1 MiB stage / stream buffers.
    expect(maxAhead).toBeLessThanOrEqual(4 * 8 * MIB);
    expect(await openUploads()).toEqual([]);
  });

  it("a failure inside DesWriter.write aborts the upload", async () => {
    const key = "w/failed.des";
    await expect(
      DesWriter.write(await S3Sink.create({ client, bucket: BUCKET, key }), {}, async (w) => {
        await fillBig(w);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await exists(key)).toBe(false);
    expect(await openUploads()).toEqual([]);
  });

  it("verifies the uploaded object: bytes that do not open fail with a typed error", async () => {
    const sink = await S3Sink.create({ client, bucket: BUCKET, key: "w/garbage.des" });
    await sink.write(bodyOf(9, 5000));
    const e = await sink.commit().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DesIoError);
    expect((e as Error).message).toMatch(/does not open/);
    expect((e as Error).cause).toBeInstanceOf(DesFormatError);
  });

  it("bodies above bigFileThreshold go to <dir>/_bigFiles/<name> in the bucket and read back", async () => {
    const key = "w/ext/archive.des";
    const big = bodyOf(77, 3 * MIB + 5);
    const w = await createS3Writer({ client, bucket: BUCKET, key }, { bigFileThreshold: MIB });
    await w.add("small", bodyOf(1, 10));
    await w.add("huge", big);
    const stats = await w.close();
    expect(stats.externalEntries).toBe(1);
    expect(await exists("w/ext/_bigFiles/huge")).toBe(true);
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    expect(await r.externalKeyOf("huge")).toBe("w/ext/_bigFiles/huge");
    expect(Buffer.from(await r.get("huge")).equals(Buffer.from(big))).toBe(true);
    const h = createHash("sha256");
    for await (const c of r.stream("huge")) h.update(c as Uint8Array);
    expect(h.digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
    // External bodies are write-once too.
    const store = new S3ExternalStore({ client, bucket: BUCKET });
    await expect(
      store.put(
        "w/ext/_bigFiles/huge",
        (async function* () {
          yield new Uint8Array(3);
        })(),
      ),
    ).rejects.toBeInstanceOf(DesExistsError);
  });
});

describe("uploadArchive", () => {
  it("uploads a finished local archive write-once and verifies it", async () => {
    const file = path.join(tmp, "local.des");
    await DesWriter.write(file, {}, async (w) => {
      for (let i = 0; i < 200; i++) await w.add(`n${i}`, bodyOf(i, 40_000 + i));
    });
    counter.reset();
    const res = await uploadArchive(file, { client, bucket: BUCKET, key: "u/local.des", partSize: 5 * MIB });
    expect(res.size).toBe(fs.statSync(file).size);
    expect(res.etag).toMatch(/^".+"$/);
    expect(counter.byCommand["UploadPartCommand"]).toBe(Math.ceil(res.size / (5 * MIB)));
    expect((await objectBytes("u/local.des")).equals(fs.readFileSync(file))).toBe(true);
    await expect(uploadArchive(file, { client, bucket: BUCKET, key: "u/local.des" })).rejects.toBeInstanceOf(
      DesExistsError,
    );
    const again = await uploadArchive(file, { client, bucket: BUCKET, key: "u/local.des", overwrite: true });
    expect(again.size).toBe(res.size);
    expect(await openUploads()).toEqual([]);
  });

  it("refuses a local file that is not an archive before sending anything", async () => {
    const file = path.join(tmp, "junk.des");
    fs.writeFileSync(file, bodyOf(5, 10_000));
    counter.reset();
    await expect(uploadArchive(file, { client, bucket: BUCKET, key: "u/junk.des" })).rejects.toBeInstanceOf(
      DesFormatError,
    );
    expect(counter.total).toBe(0);
  });
});

describe("configuration", () => {
  it("rejects part sizes S3 cannot take", async () => {
    await expect(createS3Writer({ client, bucket: BUCKET, key: "c/x.des", partSize: MIB })).rejects.toThrow(/partSize/);
  });

  it("works with a client whose endpoint differs (sanity of s3Config)", () => {
    const c = new S3Client(s3Config("http://127.0.0.1:1"));
    expect(c.config.forcePathStyle).toBe(true);
    c.destroy();
  });
});
