import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesAbortedError, DesChangedError, DesReader, DesWriter, MemorySink } from "../src/index.js";
import type { RangeSource, ReadHints } from "../src/index.js";
import { S3DesReader, S3Source } from "../src/s3/index.js";
import type { IndexCache, IndexCacheStats } from "../src/io/cache.js";
import { bodyOf } from "./helpers/data.js";
import { countingClient, ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto, RequestCounter } from "./helpers/moto.js";

const BUCKET = `des-opening-${Date.now().toString(36)}-${process.pid}`;
const N = 40;
const nameOf = (i: number): string => `n${String(i).padStart(3, "0")}`;
const sizeOf = (i: number, gen: number): number => 1000 + ((i * 37 + gen * 11) % 500);

async function generation(gen: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(nameOf(i), bodyOf(i, sizeOf(i, gen), gen));
  });
  return sink.bytes();
}

let moto: Moto | undefined;
let direct: S3Client;
let client: S3Client;
let counter: RequestCounter;
const gens: Uint8Array[] = [];

beforeAll(async () => {
  moto = await startMoto();
  direct = new S3Client(s3Config(moto.endpoint));
  ({ client, counter } = countingClient(moto.endpoint));
  await ensureBucket(direct, BUCKET);
  for (let g = 0; g < 4; g++) gens.push(await generation(g));
}, 120_000);

afterAll(async () => {
  direct?.destroy();
  client?.destroy();
  await moto?.stop();
});

async function put(key: string, gen: number): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: gens[gen]! }));
}

/** Which generation each entry of a result came from (-1: none matches). */
function generationsOf(got: Map<string, Uint8Array>): number[] {
  return [...got].map(([name, b]) => {
    const i = Number(name.slice(1));
    for (let g = 0; g < gens.length; g++) if (Buffer.from(b).equals(Buffer.from(bodyOf(i, sizeOf(i, g), g)))) return g;
    return -1;
  });
}

/**
 * The S3 source of the test, with a hook run after each data read completes
 * (the test replaces the object there, between two reads of one batch).
 */
class HookedSource implements RangeSource {
  readonly inner: S3Source;
  afterRead: ((n: number) => Promise<void>) | undefined;
  afterTail: ((n: number) => Promise<void>) | undefined;
  reads = 0;
  tails = 0;
  constructor(key: string) {
    this.inner = new S3Source({ client, bucket: BUCKET, key });
  }
  get key(): string {
    return this.inner.key;
  }
  get size(): number | undefined {
    return this.inner.size;
  }
  get hints(): ReadHints {
    return this.inner.hints;
  }
  async readTail(length: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; size: number; version?: string }> {
    const t = await this.inner.readTail(length, signal);
    this.tails++;
    await this.afterTail?.(this.tails);
    return t;
  }
  async read(offset: number, length: number, signal?: AbortSignal, version?: string): Promise<Uint8Array> {
    const b = await this.inner.read(offset, length, signal, version);
    this.reads++;
    await this.afterRead?.(this.reads);
    return b;
  }
}

// One group per entry, one read at a time: the object can be replaced between two groups of one batch.
// A small tail, so that the index and data are read from S3, not served from the bytes read at open.
const oneByOne = { maxGap: 0, maxSpan: 1, concurrency: 1, tailSize: 256 };
const names = Array.from({ length: N }, (_, i) => nameOf(i));

describe("getMany comes from one opening", () => {
  it("an object replaced mid-batch: the whole batch is re-planned on the new opening, never a mix", async () => {
    const key = "mid/a.des";
    await put(key, 0);
    const src = new HookedSource(key);
    const r = await DesReader.open(src, oneByOne);
    expect(src.tails).toBe(1);
    let replaced = false;
    src.afterRead = async (n) => {
      if (n === 3 && !replaced) {
        replaced = true;
        await put(key, 1);
      }
    };
    const got = await r.getMany(names);
    expect(replaced).toBe(true);
    expect(got.size).toBe(N);
    expect(new Set(generationsOf(got))).toEqual(new Set([1]));
    expect(src.tails).toBe(2); // one reopen
    // Later calls read the new generation too.
    expect(generationsOf(await r.getMany(names.slice(0, 5)))).toEqual([1, 1, 1, 1, 1]);
    await r.close();
  });

  it("a second change while the batch is re-read is a DesChangedError (no partial result)", async () => {
    const key = "mid/b.des";
    await put(key, 0);
    const src = new HookedSource(key);
    const r = await DesReader.open(src, oneByOne);
    let step = 0;
    src.afterRead = async (n) => {
      if (n === 2 && step === 0) {
        step = 1;
        await put(key, 1);
      }
    };
    src.afterTail = async () => {
      if (step === 1) {
        step = 2;
        await put(key, 2); // right after the reopen read its tail
      }
    };
    const e = await r.getMany(names).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DesChangedError);
    expect((e as Error).message).toMatch(/changed again/);
    expect(generationsOf(await r.getMany(names))).toEqual(names.map(() => 2));
    await r.close();
  });

  it("iterMany restarts on the new opening while nothing was yielded, and refuses to mix after", async () => {
    const key = "mid/c.des";
    await put(key, 0);
    const src = new HookedSource(key);
    const r = await DesReader.open(src, oneByOne);
    // Replaced during the lookups/first read: nothing yielded yet, so the batch restarts.
    let replaced = false;
    src.afterRead = async () => {
      if (!replaced) {
        replaced = true;
        await put(key, 1);
      }
    };
    const got = new Map<string, Uint8Array>();
    for await (const [n, b] of r.iterMany(names)) got.set(n, b);
    expect(new Set(generationsOf(got))).toEqual(new Set([1]));
    expect(got.size).toBe(N);

    // Replaced after the consumer took entries of generation 1: DesChangedError, nothing of generation 3 is yielded.
    src.afterRead = undefined;
    const seen = new Map<string, Uint8Array>();
    const it = r.iterMany(names);
    let error: unknown;
    try {
      for await (const [n, b] of it) {
        seen.set(n, b);
        if (seen.size === 1) await put(key, 3);
      }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DesChangedError);
    expect(new Set(generationsOf(seen))).toEqual(new Set([1]));
    await r.close();
  });

  it("a shared reopen runs under its own controller: one caller aborting does not fail another", async () => {
    const key = "mid/d.des";
    await put(key, 0);
    const src = new HookedSource(key);
    const r = await DesReader.open(src, oneByOne);
    await put(key, 1);
    // Hold the reopen's tail read until both callers wait on it.
    let release: (() => void) | undefined;
    const held = new Promise<void>((res) => (release = res));
    src.afterTail = async () => held;
    const ac = new AbortController();
    const a = r.get(nameOf(1), { signal: ac.signal }).then(
      () => "ok",
      (e: unknown) => e,
    );
    while (src.tails < 2) await new Promise((res) => setTimeout(res, 5));
    const b = r.get(nameOf(2)); // no signal: must not be failed by a's abort
    ac.abort();
    expect(await a).toBeInstanceOf(DesAbortedError);
    release!();
    const bb = await b;
    expect(Buffer.from(bb).equals(Buffer.from(bodyOf(2, sizeOf(2, 1), 1)))).toBe(true);
    await r.close();
  });

  it("the moto client saw only ranged GETs (no HEAD) for all of the above", () => {
    expect(Object.keys(counter.byCommand)).toEqual(["GetObjectCommand"]);
  });
});

/** The smallest IndexCache: a Map. */
function mapCache(): IndexCache & { map: Map<string, Uint8Array> } {
  const map = new Map<string, Uint8Array>();
  return {
    map,
    get: async (k) => map.get(k),
    set: async (k, v) => void map.set(k, v),
    delete: async (k) => void map.delete(k),
    deletePrefix: async (p) => {
      let n = 0;
      for (const k of [...map.keys()]) if (k.startsWith(p) && map.delete(k)) n++;
      return n;
    },
    stats: (): IndexCacheStats => ({
      hits: 0,
      misses: 0,
      sets: 0,
      evictions: 0,
      errors: 0,
      bytes: 0,
      entries: map.size,
    }),
  };
}

describe("an IndexCache over S3", () => {
  it("a warm open makes zero GETs, the first data GET carries If-Match; a replaced object is purged, reopened, retried once", async () => {
    const key = "cache/a.des";
    await put(key, 0);
    const cache = mapCache();
    const ref = { client, bucket: BUCKET, key };
    const first = await S3DesReader.open(ref, { cache, tailSize: 256 });
    await first.warm();
    await first.close();
    expect(cache.map.has(`des1|s3://${BUCKET}/${key}|tail`)).toBe(true);

    // A second "process": its own client, the shared cache.
    const other = countingClient(moto!.endpoint);
    const ifMatch: (string | undefined)[] = [];
    other.client.middlewareStack.add(
      (next) => async (args) => {
        ifMatch.push((args.request as { headers?: Record<string, string> }).headers?.["if-match"]);
        return next(args);
      },
      { step: "finalizeRequest", name: "captureIfMatch" },
    );
    const warm = await S3DesReader.open({ client: other.client, bucket: BUCKET, key }, { cache, tailSize: 256 });
    expect(other.counter.total).toBe(0);
    expect(await warm.list()).toHaveLength(N);
    expect(other.counter.total).toBe(0);
    const b = await warm.get(nameOf(4));
    expect(Buffer.from(b).equals(Buffer.from(bodyOf(4, sizeOf(4, 0), 0)))).toBe(true);
    expect(other.counter.total).toBe(1);
    expect(ifMatch[0]).toMatch(/^"?[0-9a-f]+"?$/);

    // Replaced behind the cache's back: the pinned GET fails (412), the archive's keys go, one reopen.
    await put(key, 1);
    other.counter.reset();
    const b2 = await warm.get(nameOf(5));
    expect(Buffer.from(b2).equals(Buffer.from(bodyOf(5, sizeOf(5, 1), 1)))).toBe(true);
    const tails = other.counter.ranges.filter((r) => r.startsWith("bytes=-"));
    expect(tails).toHaveLength(1);
    await warm.close();
    const versions = new Set([...cache.map.keys()].filter((k) => !k.endsWith("|tail")).map((k) => k.split("|")[2]));
    expect(versions.size).toBe(1); // only the new version's pages remain
    other.client.destroy();
  });
});
