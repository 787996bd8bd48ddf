import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coalesceRanges } from "../src/read/coalesce.js";
import type { RangeWant } from "../src/read/coalesce.js";
import { planReads } from "../src/read/plan.js";
import { REMOTE_COST } from "../src/io/cost.js";
import { DesAbortedError, DesChangedError, DesIoError } from "../src/errors.js";
import { DesReader } from "../src/read/reader.js";
import { MemorySink } from "../src/sinks/memory.js";
import { DesWriter } from "../src/write/writer.js";
import { HttpSource, S3DesReader, S3Source, S3_HINTS, createS3Writer } from "../src/s3/index.js";
// Transitive dependency of @aws-sdk/client-s3, used here only to presign URLs for the test.
import { SignatureV4 } from "@smithy/signature-v4";
import { startFaultProxy } from "./helpers/fault-proxy.js";
import type { FaultProxy } from "./helpers/fault-proxy.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto, RequestCounter } from "./helpers/moto.js";
import { loadManifest, vectorDir, vectorsPresent } from "./helpers/vectors.js";
import { bodyOf, rng as rngOf } from "./helpers/data.js";

// Unique per run, so a shared server (DES_TEST_S3_ENDPOINT) never sees leftovers of an earlier run.
const BUCKET = `des-reader-${Date.now().toString(36)}-${process.pid}`;
const MIB = 1 << 20;

/** Seeded sizes: 1..12 KiB, every 20th entry empty. */
function sizeOf(i: number, gen = 1): number {
  if (i % 20 === 7) return 0;
  return 1 + (((Math.imul(i + 13, 0x9e3779b1) ^ gen) >>> 0) % (12 * 1024));
}

const BATCH_N = 2000;
const batchName = (i: number): string => `file-${String(i).padStart(5, "0")}.bin`;
const BIG_NAME = "big.bin";
const BIG_SIZE = 20 * MIB + 12345;

/** The batch archive in memory: 2000 entries with meta (~12 MB). */
async function batchArchive(gen: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < BATCH_N; i++)
      await w.add(batchName(i), bodyOf(i, sizeOf(i, gen), gen), { meta: { i, gen, tag: `t${i % 7}` } });
  });
  return sink.bytes();
}

let moto: Moto | undefined;
let proxy: FaultProxy | undefined;
let direct: S3Client;
let client: S3Client;
let counter: RequestCounter;
const MILLION_KEY = "big/million.des";
const MILLION = 1_000_000;
const millionName = (i: number): string => `m${String(i).padStart(7, "0")}`;
function millionBody(i: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, i, true);
  return b;
}

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy(moto.endpoint);
  direct = new S3Client(s3Config(moto.endpoint));
  ({ client, counter } = countingClient(proxy.endpoint));
  await ensureBucket(direct, BUCKET);
  // The 1,000,000-entry v2 archive, streamed straight to S3 (multipart) once for this file.
  const w = await createS3Writer({ client: direct, bucket: BUCKET, key: MILLION_KEY });
  for (let i = 0; i < MILLION; i++) await w.add(millionName(i), millionBody(i));
  await w.close();
}, 120_000);

afterAll(async () => {
  direct?.destroy();
  client?.destroy();
  await proxy?.close();
  await moto?.stop();
});

function resetCounts(): void {
  counter.reset();
  proxy!.reset();
}

async function put(key: string, bytes: Uint8Array): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
}

describe("open", () => {
  it("costs exactly one suffix-range GET and learns size and ETag", async () => {
    const bytes = await batchArchive(1);
    await put("open/a.des", bytes);
    resetCounts();
    const source = new S3Source({ client, bucket: BUCKET, key: "open/a.des" });
    const r = await DesReader.open(source);
    expect(counter.total).toBe(1);
    expect(counter.byCommand).toEqual({ GetObjectCommand: 1 });
    expect(proxy!.stats.ranges).toEqual(["bytes=-65536"]);
    expect(r.size).toBe(bytes.length);
    expect(source.size).toBe(bytes.length);
    expect(source.etag).toMatch(/^".+"$/);
    expect(source.hints).toEqual(S3_HINTS);
    expect(S3_HINTS).toEqual({
      maxGap: MIB,
      maxSpan: 8 * MIB,
      concurrency: 8,
      tailBytes: 65_536,
      cost: REMOTE_COST,
      learnCost: true,
    });
    await r.close();
  });

  it("reads an archive smaller than tailSize whole with that one GET and never again", async () => {
    const sink = new MemorySink();
    const names = Array.from({ length: 50 }, (_, i) => `s${i}`);
    await DesWriter.write(sink, {}, async (w) => {
      for (const [i, n] of names.entries()) await w.add(n, bodyOf(i, (i * 37) % 300), { meta: { i } });
      await w.add("empty", new Uint8Array(0));
    });
    const bytes = sink.bytes();
    expect(bytes.length).toBeLessThan(65536);
    await put("open/small.des", bytes);
    resetCounts();
    const r = await S3DesReader.open({ client, bucket: BUCKET, key: "open/small.des" });
    const all = await r.getMany([...names, "empty"]);
    for (const [i, n] of names.entries())
      expect(Buffer.from(all.get(n)!).equals(Buffer.from(bodyOf(i, (i * 37) % 300)))).toBe(true);
    expect(all.get("empty")!.length).toBe(0);
    const metas = await r.getMetaMany(names);
    expect(metas.get("s3")).toEqual({ i: 3 });
    expect(await r.list()).toHaveLength(51);
    expect((await r.stat("s10")).size).toBe(70);
    const v = await r.verify();
    expect(v.ok).toBe(true);
    for await (const _ of r.stream("s5")) void _;
    expect(counter.total).toBe(1);
    expect(r.ioStats.requests).toBe(1);
    await r.close();
  });

  it("pins later GETs with If-Match (VersionId-free) and only the open is unpinned", async () => {
    await put("open/b.des", await batchArchive(1));
    resetCounts();
    const seen: { range?: string | undefined; ifMatch?: string | undefined }[] = [];
    const { client: c2 } = countingClient(proxy!.endpoint);
    c2.middlewareStack.add(
      (next) => async (args) => {
        const h = (args.request as { headers: Record<string, string> }).headers;
        seen.push({ range: h["range"], ifMatch: h["if-match"] });
        return next(args);
      },
      { step: "finalizeRequest", priority: "low", name: "spy" },
    );
    const r = await S3DesReader.open({ client: c2, bucket: BUCKET, key: "open/b.des" });
    await r.getMany([batchName(1), batchName(1500)]);
    expect(seen[0]!.ifMatch).toBeUndefined();
    expect(seen.length).toBeGreaterThan(1);
    for (const s of seen.slice(1)) expect(s.ifMatch).toMatch(/^".+"$/);
    c2.destroy();
  });
});

describe("1,000,000-entry archive", () => {
  it("a cold lookup costs at most 3 requests and 256 KiB", async () => {
    resetCounts();
    const r = await S3DesReader.open({ client, bucket: BUCKET, key: MILLION_KEY });
    expect(r.entryCount).toBe(MILLION);
    expect(counter.total).toBe(1);
    const i = 654_321;
    const got = await r.get(millionName(i));
    expect(Buffer.from(got).equals(Buffer.from(millionBody(i)))).toBe(true);
    expect(counter.total).toBeLessThanOrEqual(3);
    expect(r.ioStats.requests).toBeLessThanOrEqual(3);
    expect(proxy!.stats.bytesOut).toBeLessThanOrEqual(256 * 1024);
    expect(r.ioStats.bytes).toBeLessThanOrEqual(256 * 1024);
    // A miss costs no data read either.
    expect(await r.has("nope")).toBe(false);
    await r.close();
  });
});

describe("batches", () => {
  const KEY = "batch/a.des";
  let reader: DesReader;
  let offsets: Map<string, { offset: number; size: number }>;

  beforeAll(async () => {
    await put(KEY, await batchArchive(1));
    // The S3 model as shipped: these tests check the planner's reads, not what a reader learns (test/cost-learning).
    reader = await S3DesReader.open({ client, bucket: BUCKET, key: KEY }, { learnCost: false });
    // Load every index page once, so the counts below are data reads only.
    offsets = new Map();
    for (let i = 0; i < BATCH_N; i++) {
      const s = await reader.stat(batchName(i));
      offsets.set(s.name, { offset: s.offset, size: s.storedSize });
    }
  });

  function wantsOf(names: readonly string[]): RangeWant<string>[] {
    const wants: RangeWant<string>[] = [];
    for (const n of names) {
      const o = offsets.get(n)!;
      if (o.size > 0) wants.push({ offset: o.offset, length: o.size, item: n });
    }
    return wants;
  }

  function expectedGroups(names: readonly string[], maxGap: number, maxSpan: number): number {
    return coalesceRanges(wantsOf(names), maxGap, maxSpan).length;
  }

  function pick(seed: number, n: number): string[] {
    const rnd = rngOf(seed);
    const set = new Set<string>();
    while (set.size < n) set.add(batchName(Math.floor(rnd() * BATCH_N)));
    return [...set];
  }

  function check(got: Map<string, Uint8Array>, names: readonly string[]): void {
    expect([...got.keys()]).toEqual(names);
    for (const n of names) {
      const i = Number(n.slice(5, 10));
      expect(Buffer.from(got.get(n)!).equals(Buffer.from(bodyOf(i, sizeOf(i, 1), 1))), n).toBe(true);
    }
  }

  it("costs exactly the reads the planner gives (S3 cost model), within its concurrency", async () => {
    const names = pick(1, 300);
    resetCounts();
    const got = await reader.getMany(names);
    check(got, names);
    const plan = planReads(wantsOf(names), REMOTE_COST);
    expect(plan.requests).toBeGreaterThan(1);
    expect(counter.total).toBe(plan.requests);
    expect(proxy!.stats.maxInFlight).toBeLessThanOrEqual(REMOTE_COST.maxConcurrency);
  });

  it("the fixed rule still applies when a call sets maxGap / maxSpan (S3 defaults)", async () => {
    const names = pick(1, 300);
    resetCounts();
    const got = await reader.getMany(names, { maxGap: MIB, maxSpan: 8 * MIB });
    check(got, names);
    const groups = expectedGroups(names, MIB, 8 * MIB);
    expect(groups).toBeGreaterThan(1);
    expect(counter.total).toBe(groups);
    expect(proxy!.stats.maxInFlight).toBeLessThanOrEqual(8);
  });

  it("costs exactly the groups the coalescing rule gives (tight per-call hints)", async () => {
    const names = pick(2, 200);
    resetCounts();
    const got = await reader.getMany(names, { maxGap: 16 * 1024, maxSpan: 256 * 1024, concurrency: 3 });
    check(got, names);
    const groups = expectedGroups(names, 16 * 1024, 256 * 1024);
    expect(groups).toBeGreaterThan(20);
    expect(counter.total).toBe(groups);
    expect(proxy!.stats.maxInFlight).toBeLessThanOrEqual(3);
  });

  it("zero-length entries cost nothing", async () => {
    const empties = Array.from({ length: BATCH_N }, (_, i) => i)
      .filter((i) => sizeOf(i) === 0)
      .map(batchName);
    expect(empties.length).toBeGreaterThan(50);
    resetCounts();
    const got = await reader.getMany(empties);
    expect(got.size).toBe(empties.length);
    for (const b of got.values()) expect(b.length).toBe(0);
    expect(counter.total).toBe(0);
  });

  it("meta batches the same way (getMetaMany)", async () => {
    const names = pick(3, 400);
    resetCounts();
    const metas = await reader.getMetaMany(names, { maxGap: 256, maxSpan: 4096 });
    for (const n of names) {
      const i = Number(n.slice(5, 10));
      expect(metas.get(n)).toEqual({ i, gen: 1, tag: `t${i % 7}` });
    }
    // META is written in add order, back to back: relative offsets are cumulative lengths.
    const rel = new Map<string, { offset: number; length: number }>();
    let at = 0;
    for (let i = 0; i < BATCH_N; i++) {
      const s = await reader.stat(batchName(i));
      rel.set(s.name, { offset: at, length: s.metaLength });
      at += s.metaLength;
    }
    const wants = names.map((n) => ({ ...rel.get(n)!, item: n }));
    expect(counter.total).toBe(coalesceRanges(wants, 256, 4096).length);
    resetCounts();
    await reader.getMetaMany(names);
    expect(counter.total).toBe(1); // the whole META region is far under 8 MiB
  });

  it("identical ranges requested concurrently share one GET", async () => {
    const n = batchName(1234);
    resetCounts();
    const results = await Promise.all([reader.get(n), reader.get(n), reader.get(n), reader.getMany([n])]);
    expect(counter.total).toBe(1);
    const want = Buffer.from(bodyOf(1234, sizeOf(1234), 1));
    expect(Buffer.from(results[0]).equals(want)).toBe(true);
    expect(Buffer.from(results[3].get(n)!).equals(want)).toBe(true);
  });

  it("honours an AbortSignal (before and during a batch)", async () => {
    const names = pick(4, 100);
    resetCounts();
    const pre = new AbortController();
    pre.abort();
    await expect(reader.getMany(names, { signal: pre.signal })).rejects.toBeInstanceOf(DesAbortedError);
    expect(counter.total).toBe(0);
    proxy!.delayMs = 1500;
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      const p = reader.getMany(names, { signal: ac.signal, maxGap: 0, maxSpan: 64 * 1024, concurrency: 2 });
      setTimeout(() => ac.abort(new Error("stop")), 100);
      await expect(p).rejects.toBeInstanceOf(DesAbortedError);
      expect(Date.now() - t0).toBeLessThan(1200);
      // Nothing new is started after the abort.
      const sent = proxy!.stats.requests;
      await new Promise((r) => setTimeout(r, 1700));
      expect(proxy!.stats.requests).toBe(sent);
    } finally {
      proxy!.delayMs = 0;
    }
    // The reader is still usable afterwards.
    check(await reader.getMany(names.slice(0, 5)), names.slice(0, 5));
  });

  it("iterMany yields entries as their ranges arrive", async () => {
    const names = pick(5, 60);
    const groups = expectedGroups(names, 0, 64 * 1024);
    expect(groups).toBeGreaterThan(5);
    resetCounts();
    proxy!.delayMs = 60;
    try {
      const seenAtFirst: number[] = [];
      let count = 0;
      for await (const [name, bytes] of reader.iterMany(names, { maxGap: 0, maxSpan: 64 * 1024, concurrency: 2 })) {
        if (count === 0) seenAtFirst.push(proxy!.stats.requests);
        count++;
        const i = Number(name.slice(5, 10));
        expect(Buffer.from(bytes).equals(Buffer.from(bodyOf(i, sizeOf(i), 1)))).toBe(true);
      }
      expect(count).toBe(names.length);
      // The first entry came out when only the first wave of GETs had been sent.
      expect(seenAtFirst[0]).toBeLessThanOrEqual(3);
      expect(counter.total).toBe(groups);
    } finally {
      proxy!.delayMs = 0;
    }
  });

  it("stream() reads a big entry in 8 MiB windows, two in flight", async () => {
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      await w.add("small", bodyOf(1, 100));
      await w.add(BIG_NAME, bodyOf(999_999, BIG_SIZE, 1));
    });
    await put("stream/big.des", sink.bytes());
    const reader = await S3DesReader.open({ client, bucket: BUCKET, key: "stream/big.des" });
    resetCounts();
    proxy!.delayMs = 100;
    const h = createHash("sha256");
    let n = 0;
    try {
      for await (const c of reader.stream(BIG_NAME)) {
        h.update(c as Uint8Array);
        n += (c as Uint8Array).length;
      }
    } finally {
      proxy!.delayMs = 0;
    }
    expect(n).toBe(BIG_SIZE);
    expect(h.digest("hex")).toBe(
      createHash("sha256")
        .update(bodyOf(999_999, BIG_SIZE, 1))
        .digest("hex"),
    );
    expect(counter.total).toBe(3);
    const lengths = proxy!.stats.ranges.map((r) => {
      const m = /bytes=(\d+)-(\d+)/.exec(r)!;
      return Number(m[2]) - Number(m[1]) + 1;
    });
    expect(lengths).toEqual([8 * MIB, 8 * MIB, BIG_SIZE - 16 * MIB]);
    expect(proxy!.stats.maxInFlight).toBe(2);
  });
});

describe("replaced objects", () => {
  const names = [batchName(3), batchName(500), batchName(1999)];
  const expectGen = (got: Map<string, Uint8Array>, gen: number): void => {
    for (const n of names) {
      const i = Number(n.slice(5, 10));
      expect(Buffer.from(got.get(n)!).equals(Buffer.from(bodyOf(i, sizeOf(i, gen), gen))), `${n} gen ${gen}`).toBe(
        true,
      );
    }
  };

  it("between open and the first get: reopens once (unpinned) and reads the new object", async () => {
    const key = "replace/a.des";
    await put(key, await batchArchive(1));
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    const source = r.source as S3Source;
    const etag1 = source.etag;
    await put(key, await batchArchive(2));
    resetCounts();
    expectGen(await r.getMany(names), 2);
    expect(source.etag).not.toBe(etag1);
    // One failed page read (412), the unpinned tail, then the lookups and data of the new object.
    expect(proxy!.stats.ranges.filter((x) => x.startsWith("bytes=-"))).toHaveLength(1);
    await r.close();
  });

  it("between reads: later reads follow the new object", async () => {
    const key = "replace/b.des";
    await put(key, await batchArchive(1));
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    expectGen(await r.getMany(names), 1);
    expect(await r.getMeta(names[1]!)).toEqual({ i: 500, gen: 1, tag: `t${500 % 7}` });
    await put(key, await batchArchive(2));
    expectGen(await r.getMany(names), 2);
    expect(await r.getMeta(names[1]!)).toEqual({ i: 500, gen: 2, tag: `t${500 % 7}` });
    await r.close();
  });

  it("concurrent operations during a replacement all read the new object", async () => {
    const key = "replace/c.des";
    await put(key, await batchArchive(1));
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    await r.list(); // all pages cached: the next calls go straight to data reads
    await put(key, await batchArchive(2));
    const results = await Promise.all([r.getMany(names), r.getMany(names.slice(0, 2)), r.getMany(names.slice(1))]);
    for (const got of results) {
      for (const [n, b] of got) {
        const i = Number(n.slice(5, 10));
        expect(Buffer.from(b).equals(Buffer.from(bodyOf(i, sizeOf(i, 2), 2))), n).toBe(true);
      }
    }
    await r.close();
  });

  it("a second change while retrying is a DesChangedError", async () => {
    const key = "replace/d.des";
    await put(key, await batchArchive(1));
    const r = await S3DesReader.open({ client, bucket: BUCKET, key });
    const third = await batchArchive(3);
    await put(key, await batchArchive(2));
    resetCounts();
    // Hold the first GET after the reopen's tail read, and replace the object meanwhile.
    let sawTail = false;
    proxy!.inject({ kind: "delay", ms: 1000 }, 1, (req) => {
      if (req.method !== "GET") return false;
      if (String(req.headers.range ?? "").startsWith("bytes=-")) {
        sawTail = true;
        return false;
      }
      return sawTail;
    });
    const p = r.getMany(names);
    const outcome = p.then(
      () => "ok",
      (e: unknown) => e,
    );
    while (proxy!.stats.faults === 0) await new Promise((res) => setTimeout(res, 10));
    await put(key, third);
    const e = await outcome;
    expect(e).toBeInstanceOf(DesChangedError);
    expect((e as Error).message).toMatch(/changed again/);
    // A fresh call settles on the third version.
    expectGen(await r.getMany(names), 3);
    await r.close();
  });

  it("a reader pinned with ifMatch never follows a change", async () => {
    const key = "replace/e.des";
    await put(key, await batchArchive(1));
    const first = await S3DesReader.open({ client, bucket: BUCKET, key });
    const etag = (first.source as S3Source).etag!;
    await first.close();
    const pinned = await S3DesReader.open({ client, bucket: BUCKET, key }, { ifMatch: etag });
    expectGen(await pinned.getMany(names), 1);
    await put(key, await batchArchive(2));
    await expect(pinned.getMany(names)).rejects.toBeInstanceOf(DesChangedError);
    await expect(S3DesReader.open({ client, bucket: BUCKET, key }, { ifMatch: etag })).rejects.toBeInstanceOf(
      DesChangedError,
    );
  });
});

describe("faults (through the proxy), every byte checked", () => {
  const KEY = "faults/a.des";
  let bytes: Uint8Array;
  let c: S3Client;

  beforeAll(async () => {
    bytes = await batchArchive(1);
    await put(KEY, bytes);
    // Fast SDK retries for the test; the default strategy is the same shape (3 attempts).
    c = new S3Client(s3Config(proxy!.endpoint, { maxAttempts: 3, retryMode: "standard" }));
  });
  afterAll(() => c?.destroy());

  async function openWarm(bodyRetries = 2): Promise<DesReader> {
    const r = await S3DesReader.open(
      { client: c, bucket: BUCKET, key: KEY },
      { retryBaseMs: 10, retryMaxMs: 50, bodyRetries },
    );
    await r.list();
    return r;
  }

  const sample = Array.from({ length: 40 }, (_, k) => batchName(k * 50 + 1));
  function checkAll(got: Map<string, Uint8Array>): void {
    for (const n of sample) {
      const i = Number(n.slice(5, 10));
      expect(Buffer.from(got.get(n)!).equals(Buffer.from(bodyOf(i, sizeOf(i), 1)))).toBe(true);
    }
  }
  const tight = { maxGap: 0, maxSpan: 32 * 1024, concurrency: 4 };

  for (const [label, fault] of [
    ["a short body", { kind: "short-body" }],
    ["a connection reset mid-body", { kind: "reset-mid-body" }],
    ["a connection reset before the headers", { kind: "reset-before-headers" }],
    ["a 500", { kind: "status", status: 500 }],
    ["a 503 SlowDown", { kind: "status", status: 503 }],
  ] as const) {
    it(`survives ${label} (twice)`, async () => {
      const r = await openWarm();
      proxy!.reset();
      proxy!.inject(fault, 2);
      const got = await r.getMany(sample, tight);
      checkAll(got);
      expect(proxy!.stats.faults).toBe(2);
      await r.close();
    });
  }

  it("a fault on the open itself is retried too", async () => {
    proxy!.reset();
    proxy!.inject({ kind: "short-body" }, 1);
    const r = await S3DesReader.open({ client: c, bucket: BUCKET, key: KEY }, { retryBaseMs: 10 });
    expect(r.size).toBe(bytes.length);
    expect(proxy!.stats.requests).toBe(2);
  });

  it("gives up on persistent 503s after the SDK's attempts, with DesIoError (no retry storm)", async () => {
    const r = await openWarm();
    proxy!.reset();
    proxy!.inject({ kind: "status", status: 503 }, 100);
    const e = await r.get(sample[0]!).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DesIoError);
    expect(proxy!.stats.requests).toBe(3); // maxAttempts, nothing added on top
    proxy!.reset();
  });

  it("gives up on persistently short bodies after 1 + bodyRetries GETs, with DesIoError", async () => {
    const r = await openWarm();
    proxy!.reset();
    proxy!.inject({ kind: "short-body" }, 100);
    await expect(r.get(sample[0]!)).rejects.toBeInstanceOf(DesIoError);
    expect(proxy!.stats.requests).toBe(3);
    proxy!.reset();
  });

  it("a mix of faults across a concurrent batch still returns every byte right", async () => {
    // Within the bounds by construction: 6 faults in all, while one range survives
    // 5 failures before the response (maxAttempts 6) and 5 broken bodies (bodyRetries 5),
    // wherever the faults land.
    const c6 = new S3Client(s3Config(proxy!.endpoint, { maxAttempts: 6 }));
    const r = await S3DesReader.open(
      { client: c6, bucket: BUCKET, key: KEY },
      { retryBaseMs: 10, retryMaxMs: 50, bodyRetries: 5 },
    );
    await r.list();
    proxy!.reset();
    const kinds = [
      { kind: "short-body" },
      { kind: "reset-mid-body" },
      { kind: "status", status: 500 },
      { kind: "status", status: 503 },
      { kind: "reset-before-headers" },
      { kind: "short-body" },
    ] as const;
    // Every third GET to arrive gets the next fault (a request is known by its headers object).
    const arrival = new WeakMap<object, number>();
    let gets = 0;
    const every3 = (req: { method: string; headers: object }): boolean => {
      if (req.method !== "GET") return false;
      if (!arrival.has(req.headers)) arrival.set(req.headers, gets++);
      return arrival.get(req.headers)! % 3 === 1;
    };
    for (const f of kinds) proxy!.inject(f, 1, every3);
    const got = await r.getMany(sample, { ...tight, concurrency: 8 });
    checkAll(got);
    expect(proxy!.stats.faults).toBe(kinds.length);
    await r.close();
    c6.destroy();
  });
});

describe("HttpSource over presigned URLs (moto)", () => {
  async function presign(key: string): Promise<string> {
    const ep = new URL(moto!.endpoint);
    const signer = new SignatureV4({
      service: "s3",
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      sha256: direct.config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const path = `/${BUCKET}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const signed = await signer.presign(
      {
        method: "GET",
        protocol: ep.protocol,
        hostname: ep.hostname,
        port: Number(ep.port),
        path,
        query: {},
        headers: { host: ep.host },
      } as never,
      { expiresIn: 600 },
    );
    return `${moto!.endpoint}${signed.path}?${new URLSearchParams(signed.query as Record<string, string>).toString()}`;
  }

  it("opens with one GET, reads batches, and follows a replaced object", async () => {
    const key = "http/presigned.des";
    await put(key, await batchArchive(1));
    const url = await presign(key);
    const source = new HttpSource(url);
    const r = await DesReader.open(source);
    expect(source.stats.requests).toBe(1);
    const names = [batchName(10), batchName(900), batchName(1800)];
    const check = (got: Map<string, Uint8Array>, gen: number): void => {
      for (const n of names) {
        const i = Number(n.slice(5, 10));
        expect(Buffer.from(got.get(n)!).equals(Buffer.from(bodyOf(i, sizeOf(i, gen), gen)))).toBe(true);
      }
    };
    check(await r.getMany(names), 1);
    await put(key, await batchArchive(2));
    check(await r.getMany(names), 2);
    await r.close();
  });
});

describe.skipIf(!vectorsPresent())("v1 vector c_many on S3 (external entry included)", () => {
  it("reads back completely, checked against manifest sha256s", async () => {
    const root = path.join(vectorDir("c_many"), "s3");
    const manifest = loadManifest("c_many");
    const walk = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]));
    for (const file of walk(root)) {
      const key = path.relative(root, file).split(path.sep).join("/");
      await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: fs.readFileSync(file) }));
    }
    const r = await S3DesReader.open({ client, bucket: BUCKET, key: "2025-01-15/shard_00.des" });
    expect(r.formatVersion).toBe(1);
    const names = await r.list();
    expect(names).toEqual(manifest.reader_list_files);
    const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
    const got = await r.getMany(names);
    let external = 0;
    for (const f of manifest.files) {
      expect(sha(got.get(f.name)!), f.name).toBe(f.sha256);
      if (f.flags & 1) external++;
    }
    expect(external).toBe(1);
    const ext = manifest.external_files[0]!;
    expect(await r.externalKeyOf(ext.name)).toBe(ext.s3_key);
    const h = createHash("sha256");
    for await (const c of r.stream(ext.name)) h.update(c as Uint8Array);
    expect(h.digest("hex")).toBe(ext.sha256);
    await r.close();
  });
});
