import { spawn, spawnSync } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemorySink } from "../src/sinks/memory.js";
import { DesWriter } from "../src/write/writer.js";
import { bodyOf } from "./helpers/data.js";
import { startFaultProxy } from "./helpers/fault-proxy.js";
import type { FaultProxy } from "./helpers/fault-proxy.js";
import { ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";
import { startRedis } from "./helpers/redis.js";
import type { TestRedis } from "./helpers/redis.js";
import { tempDir } from "./helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BUCKET = `des-lambda-${Date.now().toString(36)}-${process.pid}`;
const KEY = "site/entries.des";
const N = 3000;
const name = (i: number): string => `e/${String(i).padStart(5, "0")}.bin`;
const size = (i: number): number => 200 + ((i * 7919) % 800);

const work = tempDir("des-lambda-");
const bundleDir = path.join(work, "bundle");
let moto: Moto | undefined;
let proxy: FaultProxy | undefined;
let redis: TestRedis | undefined;
let direct: S3Client;

/** The archive, generation `gen` (bodies differ per generation). Bigger than the 64 KiB tail, so data reads are real GETs. */
async function archive(gen: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(name(i), bodyOf(i, size(i), gen));
  });
  return sink.bytes();
}

async function put(bytes: Uint8Array): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: bytes }));
}

/** One handler process: the bundle imported fresh, driven one call at a time over stdin/stdout. */
class LambdaProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = "";

  constructor(env: Record<string, string>) {
    const runner = path.join(work, "runner.mjs");
    this.child = spawn(process.execPath, [runner], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? "",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        AWS_REGION: "us-east-1",
        AWS_EC2_METADATA_DISABLED: "true",
        DES_BUCKET: BUCKET,
        DES_KEY: KEY,
        DES_S3_ENDPOINT: proxy!.endpoint,
        ...env,
      },
    });
    this.child.stderr.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Runs one call and returns its result with the S3 requests it caused (counted by the proxy). */
  async call(op: { op: "warm" } | { op: "get"; name: string }): Promise<{ requests: number; value: unknown }> {
    const before = proxy!.stats.requests;
    this.child.stdin.write(JSON.stringify(op) + "\n");
    const line = await this.lines.next();
    if (line.done) throw new Error(`handler process ended: ${this.stderr}`);
    const reply = JSON.parse(line.value) as { ok: boolean; value: unknown; error?: string };
    if (!reply.ok) throw new Error(`handler failed: ${reply.error}`);
    return { requests: proxy!.stats.requests - before, value: reply.value };
  }

  async end(): Promise<void> {
    const exited = new Promise<number | null>((r) => this.child.once("exit", (code) => r(code)));
    this.child.stdin.end();
    expect(await exited).toBe(0);
  }
}

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy(moto.endpoint);
  redis = await startRedis();
  direct = new S3Client(s3Config(moto.endpoint));
  await ensureBucket(direct, BUCKET);
  await put(await archive(1));
  // The example, bundled the way docs/lambda.md says, into a folder with no node_modules near it.
  const built = spawnSync(process.execPath, [path.join(ROOT, "examples/lambda/build.mjs"), bundleDir], {
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`bundling failed: ${built.stderr}`);
  fs.writeFileSync(
    path.join(work, "runner.mjs"),
    `import { createInterface } from "node:readline";
const { handler, warmUp, shutdown } = await import(${JSON.stringify(pathToFileURL(path.join(bundleDir, "handler.mjs")).href)});
for await (const line of createInterface({ input: process.stdin })) {
  const op = JSON.parse(line);
  try {
    const value = op.op === "warm" ? await warmUp() : await handler({ name: op.name });
    process.stdout.write(JSON.stringify({ ok: true, value }) + "\\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack || e) }) + "\\n");
  }
}
// The end of a sandbox: cache writes still in flight land before the process goes.
await shutdown();
process.exit(0);
`,
  );
}, 120_000);

afterAll(async () => {
  direct?.destroy();
  await proxy?.close();
  await redis?.stop();
  await moto?.stop();
});

const bodyB64 = (i: number, gen: number): string => Buffer.from(bodyOf(i, size(i), gen)).toString("base64");

describe("the Lambda example, bundled", () => {
  it("is self-contained: no lib-storage, ioredis only in a lazily loaded chunk", () => {
    const main = fs.readFileSync(path.join(bundleDir, "handler.mjs"), "utf8");
    expect(main).not.toMatch(/from\s*["']@aws-sdk\/lib-storage["']/);
    expect(main).not.toMatch(/from\s*["']ioredis["']/);
    // The only bare imports left are Node built-ins and the lazy lib-storage one.
    const bare = [...main.matchAll(/(?:from|import\()\s*["']([^"'./][^"']*)["']/g)].map((m) => m[1]!);
    expect(bare.filter((s) => !s.startsWith("node:") && s !== "@aws-sdk/lib-storage" && !/^[a-z_]+$/.test(s))).toEqual(
      [],
    );
  });

  it("cold process, warm process, and a new process with a warm /tmp: request counts", async () => {
    const tmp = path.join(work, "tmp-a");
    const cold = new LambdaProcess({ DES_CACHE_DIR: tmp });
    const open = await cold.call({ op: "warm" });
    expect(open.value).toBe(N);
    expect(open.requests).toBeGreaterThanOrEqual(1); // the tail (and index pages not in it)
    const first = await cold.call({ op: "get", name: name(10) });
    expect(first.value).toMatchObject({ statusCode: 200, body: bodyB64(10, 1) });
    // Warm process: the reader is open, its pages cached: one GET, the data.
    const again = await cold.call({ op: "get", name: name(10) });
    expect(again.requests).toBe(1);
    expect((await cold.call({ op: "get", name: name(11) })).requests).toBe(1);
    expect((await cold.call({ op: "get", name: "absent" })).value).toMatchObject({ statusCode: 404 });
    await cold.end();

    // A new process (a cold start in the same sandbox) with /tmp kept: zero requests to open, one to read.
    const next = new LambdaProcess({ DES_CACHE_DIR: tmp });
    expect(await next.call({ op: "warm" })).toEqual({ requests: 0, value: N });
    const got = await next.call({ op: "get", name: name(10) });
    expect(got.requests).toBe(1);
    expect(got.value).toMatchObject({ statusCode: 200, body: bodyB64(10, 1) });
    await next.end();
  });

  it("a new process with an empty /tmp and a warm Redis opens with zero requests", async () => {
    const prefix = `lambda-${process.pid}:`;
    const first = new LambdaProcess({
      DES_CACHE_DIR: path.join(work, "tmp-r1"),
      REDIS_URL: redis!.url,
      DES_REDIS_PREFIX: prefix,
    });
    expect((await first.call({ op: "warm" })).requests).toBeGreaterThanOrEqual(1);
    await first.call({ op: "get", name: name(20) });
    await first.end();
    const second = new LambdaProcess({
      DES_CACHE_DIR: path.join(work, "tmp-r2"),
      REDIS_URL: redis!.url,
      DES_REDIS_PREFIX: prefix,
    });
    expect(await second.call({ op: "warm" })).toEqual({ requests: 0, value: N });
    const got = await second.call({ op: "get", name: name(20) });
    expect(got.requests).toBe(1);
    expect(got.value).toMatchObject({ statusCode: 200, body: bodyB64(20, 1) });
    await second.end();
  });

  it("an archive replaced between two processes is never served stale", async () => {
    const tmp = path.join(work, "tmp-x");
    const a = new LambdaProcess({ DES_CACHE_DIR: tmp });
    expect((await a.call({ op: "get", name: name(30) })).value).toMatchObject({ body: bodyB64(30, 1) });
    await a.end();
    await put(await archive(2));
    const b = new LambdaProcess({ DES_CACHE_DIR: tmp });
    expect((await b.call({ op: "warm" })).requests).toBe(0); // trusts /tmp until S3 says otherwise
    const got = await b.call({ op: "get", name: name(30) });
    expect(got.value).toMatchObject({ statusCode: 200, body: bodyB64(30, 2) });
    // 412 on the pinned data GET, then the reopen (tail, pages) and the data again.
    expect(got.requests).toBeGreaterThanOrEqual(3);
    expect((await b.call({ op: "get", name: name(30) })).requests).toBe(1);
    await b.end();
    await put(await archive(1));
  });
});
