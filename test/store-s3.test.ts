import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DailyShardedDesStore, DesIoError, parseName } from "../src/index.js";
import { S3Location } from "../src/s3/index.js";
import { ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";
import { blobFor, sameBytes } from "./helpers/store-data.js";
import { tempDir } from "./helpers/tmp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, "helpers", "store-child.ts");
const BUCKET = "store-bucket";
const T = Date.UTC(2025, 0, 15, 9, 0, 0);
/** A clock on 2025-01-15 that moves one millisecond every 100 reads (a fixed clock would stall after 256 names). */
let reads = 0;
const clock = (): number => T + Math.floor(reads++ / 100);
let moto: Moto | undefined;
let client: S3Client;

beforeAll(async () => {
  moto = await startMoto();
  client = new S3Client(s3Config(moto.endpoint));
  await ensureBucket(client, BUCKET);
});
afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

async function keys(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) out.set(o.Key!, o.ETag!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

function spoolFiles(spool: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith(".des")) out.push(path.join(d, e.name));
    }
  };
  walk(spool);
  return out;
}

async function fill(store: DailyShardedDesStore, from: number, count: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  await Promise.all(Array.from({ length: count }, async (_, i) => m.set(await store.put(blobFor(from + i)), from + i)));
  return m;
}

describe("DailyShardedDesStore on S3 (moto)", () => {
  it("uploads sealed parts write-once, removes the spool copy after the upload is verified, and reads from the bucket", async () => {
    const spool = tempDir();
    const location = new S3Location({ client, bucket: BUCKET, prefix: "one" });
    const store = await DailyShardedDesStore.open({ location, spoolDir: spool, nodeId: 1, shardBits: 4, clock });
    const names = await fill(store, 0, 300);
    await store.flush();
    const objects = await keys("one/2025-01-15/");
    expect(objects.size).toBe(16);
    for (const k of objects.keys())
      expect(k).toMatch(/^one\/2025-01-15\/[0-9a-f]\.n01-[0-9A-F]{12}-[0-9A-F]{12}\.des$/);
    expect(spoolFiles(spool)).toEqual([]);
    for (const [n, k] of [...names].slice(0, 20)) expect(sameBytes(await store.get(n), blobFor(k))).toBe(true);
    const mine = await store.getMany(names.keys());
    for (const [n, k] of names) expect(sameBytes(mine.get(n), blobFor(k))).toBe(true);
    await store.close();
    const reader = await DailyShardedDesStore.open({ location, spoolDir: tempDir(), nodeId: 2, shardBits: 4 });
    const got = await reader.getMany(names.keys());
    for (const [n, k] of names) expect(sameBytes(got.get(n), blobFor(k))).toBe(true);
    expect(reader.stats.listings).toBeLessThanOrEqual(16);
    // compaction on the bucket: one merged object per shard replaces the node parts
    const res = await reader.compactDay("2025-01-15");
    expect(res).toMatchObject({ shards: 16, partsMerged: 16, entries: 300 });
    const merged = await keys("one/2025-01-15/");
    expect([...merged.keys()].sort()).toEqual(
      Array.from({ length: 16 }, (_, i) => `one/2025-01-15/${i.toString(16)}.des`),
    );
    const after = await reader.getMany(names.keys());
    for (const [n, k] of names) expect(sameBytes(after.get(n), blobFor(k))).toBe(true);
    await reader.close();
  });

  it("a restart uploads what was sealed but not uploaded, and leaves an object already uploaded as it was", async () => {
    const spool = tempDir();
    // First run: the bucket does not exist, so sealing writes the spool parts but every upload fails.
    const broken = new S3Location({ client, bucket: "no-such-bucket", prefix: "two" });
    const a = await DailyShardedDesStore.open({ location: broken, spoolDir: spool, nodeId: 3, shardBits: 2, clock });
    const names = await fill(a, 0, 120);
    await expect(a.flush()).rejects.toBeInstanceOf(DesIoError);
    // a failed upload does not stop puts; the names stay readable from the journal
    const extra = await fill(a, 120, 5);
    for (const [n, k] of extra) names.set(n, k);
    for (const [n, k] of [...extra].slice(0, 2)) expect(sameBytes(await a.get(n), blobFor(k))).toBe(true);
    await a.close().catch(() => undefined);
    expect(spoolFiles(spool).length).toBeGreaterThanOrEqual(1);
    // Second run, the real bucket: spool parts are uploaded, the journal is sealed again, nothing is lost or doubled.
    const location = new S3Location({ client, bucket: BUCKET, prefix: "two" });
    const b = await DailyShardedDesStore.open({ location, spoolDir: spool, nodeId: 3, shardBits: 2, clock });
    const before = await b.getMany(names.keys());
    for (const [n, k] of names) expect(sameBytes(before.get(n), blobFor(k))).toBe(true);
    await b.flush();
    const objects = await keys("two/2025-01-15/");
    // two journals (before and after the failed flush), each sealed into at most 4 parts
    expect(objects.size).toBeGreaterThanOrEqual(4);
    expect(objects.size).toBeLessThanOrEqual(8);
    expect(spoolFiles(spool)).toEqual([]);
    expect((await b.list("2025-01-15")).length).toBe(125);
    await b.close();
    // A spool copy of a part that is already in the bucket (a crash after the upload): verified and removed, object untouched.
    const [someKey, etag] = [...objects][0]!;
    const rel = someKey.slice("two/".length);
    const copy = path.join(spool, "n03", "sealed", ...rel.split("/"));
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    const body = await (await location.source(rel)).read(0, (await location.stat(rel))!.size);
    fs.writeFileSync(copy, body);
    const c = await DailyShardedDesStore.open({ location, spoolDir: spool, nodeId: 3, shardBits: 2, clock });
    expect(fs.existsSync(copy)).toBe(false);
    expect((await keys("two/2025-01-15/")).get(someKey)).toBe(etag);
    await c.close();
  });

  it("two processes with different node ids on one bucket never write the same object or mint the same name", async () => {
    const run = (node: string): Promise<Map<string, number>> =>
      new Promise((resolve, reject) => {
        const where = `s3|${moto!.endpoint}|${BUCKET}|three|${tempDir()}`;
        const child = spawn(process.execPath, ["--import", "tsx", CHILD, where, node, "250", "8", "100", "close"], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => (out += d));
        child.once("exit", (code) => {
          if (code !== 0) return reject(new Error(`child exited with ${code}`));
          const m = new Map<string, number>();
          for (const line of out.split("\n")) {
            const [name, k] = line.split(" ");
            if (name && k !== undefined) m.set(name, Number(k));
          }
          resolve(m);
        });
      });
    const [a, b] = await Promise.all([run("1"), run("2")]);
    expect(a.size + b.size).toBe(500);
    for (const n of a.keys()) expect(b.has(n)).toBe(false);
    const days = new Set([...a.keys(), ...b.keys()].map((n) => parseName(n).day));
    const objects = new Map<string, string>();
    for (const d of days) for (const [k, e] of await keys(`three/${d}/`)) objects.set(k, e);
    const byNode = [...objects.keys()].map((k) => /\.n(0[12])-/.exec(k)?.[1]);
    expect(byNode.every((x) => x === "01" || x === "02")).toBe(true);
    expect(byNode.filter((x) => x === "01").length).toBeGreaterThan(0);
    expect(byNode.filter((x) => x === "02").length).toBeGreaterThan(0);
    const location = new S3Location({ client, bucket: BUCKET, prefix: "three" });
    const reader = await DailyShardedDesStore.open({ location, spoolDir: tempDir(), nodeId: 9, shardBits: 4 });
    const all = new Map([...a, ...b]);
    const got = await reader.getMany(all.keys());
    for (const [n, k] of all) expect(sameBytes(got.get(n), blobFor(k))).toBe(true);
    await reader.close();
  });
});
