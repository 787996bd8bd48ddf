import { GetObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesChangedError, DesReader, DesWriter, MemorySink } from "../src/index.js";
import { S3DesReader, s3AppendStats, s3AppendTarget } from "../src/s3/index.js";
import { bodyOf } from "./helpers/data.js";
import { ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";

const BUCKET = `des-append-${Date.now().toString(36)}-${process.pid}`;
const MIB = 1 << 20;

/** Requests by command, and bytes sent (request bodies) and received (response bodies), by command. */
interface Wire {
  requests: Record<string, number>;
  sent: Record<string, number>;
  received: Record<string, number>;
  reset(): void;
}

let moto: Moto | undefined;
let client: S3Client;
const wire: Wire = {
  requests: {},
  sent: {},
  received: {},
  reset() {
    this.requests = {};
    this.sent = {};
    this.received = {};
  },
};
const total = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  moto = await startMoto();
  client = new S3Client(s3Config(moto.endpoint));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? "unknown";
      wire.requests[name] = (wire.requests[name] ?? 0) + 1;
      const body = (args.request as { body?: unknown }).body;
      if (body instanceof Uint8Array) wire.sent[name] = (wire.sent[name] ?? 0) + body.length;
      const out = await next(args);
      const len = Number((out.response as { headers?: Record<string, string> }).headers?.["content-length"] ?? 0);
      if (name === "GetObjectCommand") wire.received[name] = (wire.received[name] ?? 0) + len;
      return out;
    },
    { step: "finalizeRequest", priority: "low", name: "desWireCounter" },
  );
  await ensureBucket(client, BUCKET);
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

async function put(key: string, entries: number, size: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < entries; i++) await w.add(`e${i}`, bodyOf(i, size), { meta: { i } });
  });
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: sink.bytes() }));
  return sink.bytes();
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function openUploads(): Promise<number> {
  return (await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads?.length ?? 0;
}

describe("append to S3", () => {
  it(
    "from 5 MiB: copies the old bytes inside S3 (UploadPartCopy) and uploads only the new ones",
    { timeout: 60_000 },
    async () => {
      const key = "a/big.des";
      const old = await put(key, 10, 700 * 1024);
      expect(old.length).toBeGreaterThan(6 * MIB);
      const pinned = await S3DesReader.open({ client, bucket: BUCKET, key });
      expect(pinned.generation).toBe(1);

      wire.reset();
      const w = await DesWriter.append(s3AppendTarget({ client, bucket: BUCKET, key }));
      for (let i = 0; i < 20; i++) await w.add(`new${i}`, bodyOf(100 + i, 10_000));
      await w.delete("e0");
      const report = await w.close();
      expect(report).toMatchObject({ generation: 2, added: 20, deleted: 1, entries: 29 });
      expect(report.archiveBytes).toBe(old.length + report.bytesWritten);
      // The old bytes never crossed the wire: one copy part, the new bytes in one part, the tail GET of the open.
      expect(wire.requests["UploadPartCopyCommand"]).toBe(1);
      expect(wire.requests["UploadPartCommand"]).toBe(1);
      expect(wire.requests["CompleteMultipartUploadCommand"]).toBe(1);
      expect(wire.requests["PutObjectCommand"]).toBeUndefined();
      expect(wire.requests["GetObjectCommand"]).toBe(1);
      expect(total(wire.received)).toBeLessThanOrEqual(64 * 1024);
      expect(total(wire.sent)).toBe(report.bytesWritten);
      expect(report.bytesWritten).toBeLessThan(20 * 10_000 + 8 * 1024);
      expect(s3AppendStats(w)).toMatchObject({
        mode: "copy",
        copiedBytes: old.length,
        uploadedBytes: report.bytesWritten,
        downloadedBytes: 0,
      });
      expect(await openUploads()).toBe(0);

      const now = await objectBytes(key);
      expect(Buffer.compare(now.subarray(0, old.length), Buffer.from(old))).toBe(0);
      const r = await S3DesReader.open({ client, bucket: BUCKET, key });
      expect(r.generation).toBe(2);
      expect(await r.has("e0")).toBe(false);
      expect(Buffer.from(await r.get("new7")).equals(Buffer.from(bodyOf(107, 10_000)))).toBe(true);
      expect(Buffer.from(await r.get("e3")).equals(Buffer.from(bodyOf(3, 700 * 1024)))).toBe(true);
      expect((await r.verify()).ok).toBe(true);
      const r1 = await DesReader.open(r.source, { generation: 1 });
      expect(await r1.has("e0")).toBe(true);
      // The reader opened before the append was pinned to the old ETag: it sees 412, reopens, and reads generation 2.
      expect(await pinned.has("new3")).toBe(false);
      expect(Buffer.from(await pinned.get("e1")).equals(Buffer.from(bodyOf(1, 700 * 1024)))).toBe(true);
      expect(pinned.generation).toBe(2);
      expect(await pinned.has("new3")).toBe(true);
    },
  );

  it(
    "a concurrent change of a big archive fails the append with DesChangedError and keeps the other writer's object",
    { timeout: 60_000 },
    async () => {
      const key = "a/race-big.des";
      await put(key, 8, 700 * 1024);
      const w = await DesWriter.append(s3AppendTarget({ client, bucket: BUCKET, key }));
      await w.add("mine", bodyOf(1, 1000));
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "someone else" }));
      await expect(w.close()).rejects.toBeInstanceOf(DesChangedError);
      expect((await objectBytes(key)).toString()).toBe("someone else");
      expect(await openUploads()).toBe(0);
    },
  );

  it("below 5 MiB: reads and rewrites the object with one conditional PutObject", { timeout: 60_000 }, async () => {
    const key = "a/small.des";
    const old = await put(key, 5, 1000);
    wire.reset();
    const w = await DesWriter.append(s3AppendTarget({ client, bucket: BUCKET, key }));
    await w.add("x", new TextEncoder().encode("hello"));
    const report = await w.close();
    expect(wire.requests["PutObjectCommand"]).toBe(1);
    expect(wire.requests["UploadPartCopyCommand"]).toBeUndefined();
    expect(wire.sent["PutObjectCommand"]).toBe(old.length + report.bytesWritten);
    expect(s3AppendStats(w)).toMatchObject({ mode: "rewrite", downloadedBytes: old.length });
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    expect(r.generation).toBe(2);
    expect(new TextDecoder().decode(await r.get("x"))).toBe("hello");

    // A change between open and close: PutObject's If-Match refuses to replace it.
    const w2 = await DesWriter.append(s3AppendTarget({ client, bucket: BUCKET, key }));
    await w2.add("y", new TextEncoder().encode("y"));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "someone else" }));
    await expect(w2.close()).rejects.toBeInstanceOf(DesChangedError);
    expect((await objectBytes(key)).toString()).toBe("someone else");
  });
});
