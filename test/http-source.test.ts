import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesAbortedError, DesChangedError, DesIoError } from "../src/errors.js";
import { HttpSource, parseContentRange } from "../src/sources/http.js";
import type { HttpSourceOptions } from "../src/sources/http.js";
import { DesReader } from "../src/read/reader.js";
import { MemorySink } from "../src/sinks/memory.js";
import { DesWriter } from "../src/write/writer.js";
import { HttpSource as HttpSourceFromRoot } from "../src/index.js";
import { bodyOf } from "./helpers/data.js";
import { planReads } from "../src/read/plan.js";
import { REMOTE_COST } from "../src/io/cost.js";

const N = 400;
const sizeOf = (i: number, gen: number): number => (i % 10 === 3 ? 0 : 200 + ((i * 7919 + gen * 31) % 6000));
const nameOf = (i: number): string => `doc/${String(i).padStart(4, "0")}.json`;

async function archive(gen: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await DesWriter.write(sink, {}, async (w) => {
    for (let i = 0; i < N; i++) await w.add(nameOf(i), bodyOf(i, sizeOf(i, gen), gen), { meta: { gen } });
  });
  return sink.bytes();
}

/**
 * A tiny file server with single-range support (`a-b`, `a-`, `-n`), a strong
 * ETag per version, If-Match, and switches to misbehave.
 */
interface TestServer {
  url: string;
  requests: { range?: string; ifMatch?: string }[];
  content: Uint8Array;
  version: number;
  etagStyle: "strong" | "weak" | "none";
  honourRange: boolean;
  honourIfMatch: boolean;
  fail: { status: number; left: number };
  short: { left: number };
  delayMs: number;
  /** Called as each request arrives, before it is answered. */
  hook: ((q: { range?: string; ifMatch?: string }) => void) | undefined;
  replace(bytes: Uint8Array): void;
  close(): Promise<void>;
}

async function startServer(content: Uint8Array): Promise<TestServer> {
  const state = {
    requests: [] as { range?: string; ifMatch?: string }[],
    content,
    version: 1,
    etagStyle: "strong" as "strong" | "weak" | "none",
    honourRange: true,
    honourIfMatch: true,
    fail: { status: 500, left: 0 },
    short: { left: 0 },
    delayMs: 0,
    hook: undefined as ((q: { range?: string; ifMatch?: string }) => void) | undefined,
  };
  const etag = (): string | undefined =>
    state.etagStyle === "none" ? undefined : `${state.etagStyle === "weak" ? "W/" : ""}"v${state.version}"`;
  const server = http.createServer((req, res) => {
    const range = req.headers.range;
    const ifMatch = req.headers["if-match"] as string | undefined;
    const q = { ...(range ? { range } : {}), ...(ifMatch ? { ifMatch } : {}) };
    state.requests.push(q);
    state.hook?.(q);
    const respond = (): void => {
      if (state.fail.left > 0) {
        state.fail.left--;
        res.writeHead(state.fail.status).end("nope");
        return;
      }
      const tag = etag();
      const headers: Record<string, string | number> = {
        "accept-ranges": "bytes",
        "last-modified": new Date(1_700_000_000_000 + state.version * 1000).toUTCString(),
      };
      if (tag) headers["etag"] = tag;
      if (state.honourIfMatch && ifMatch !== undefined && ifMatch !== tag) {
        res.writeHead(412, headers).end();
        return;
      }
      const size = state.content.length;
      let start = 0;
      let end = size - 1;
      let partial = false;
      if (state.honourRange && range) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(range);
        if (!m) {
          res.writeHead(416, { ...headers, "content-range": `bytes */${size}` }).end();
          return;
        }
        if (m[1] === "") {
          start = Math.max(0, size - Number(m[2]));
        } else {
          start = Number(m[1]);
          end = m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2]));
        }
        if (size === 0 || start >= size) {
          res.writeHead(416, { ...headers, "content-range": `bytes */${size}` }).end();
          return;
        }
        partial = true;
      }
      let body = Buffer.from(state.content.subarray(start, end + 1));
      if (partial) headers["content-range"] = `bytes ${start}-${end}/${size}`;
      if (state.short.left > 0) {
        state.short.left--;
        body = body.subarray(0, Math.floor(body.length / 2));
      }
      headers["content-length"] = body.length;
      res.writeHead(partial ? 206 : 200, headers).end(body);
    };
    if (state.delayMs > 0) setTimeout(respond, state.delayMs);
    else respond();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/bucket/archive.des?X-Amz-Signature=abc&X-Amz-Expires=60&v=1`,
    replace(bytes: Uint8Array) {
      state.content = bytes;
      state.version++;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

let gen1: Uint8Array;
let gen2: Uint8Array;
let gen3: Uint8Array;
let srv: TestServer;

beforeAll(async () => {
  [gen1, gen2, gen3] = await Promise.all([archive(1), archive(2), archive(3)]);
  srv = await startServer(gen1);
});
afterAll(async () => {
  await srv?.close();
});

function reset(content: Uint8Array): void {
  srv.replace(content);
  srv.requests.length = 0;
  srv.etagStyle = "strong";
  srv.honourRange = true;
  srv.honourIfMatch = true;
  srv.fail = { status: 500, left: 0 };
  srv.short = { left: 0 };
  srv.delayMs = 0;
  srv.hook = undefined;
}

function expectGen(got: Map<string, Uint8Array>, gen: number): void {
  for (const [name, bytes] of got) {
    const i = Number(name.slice(4, 8));
    expect(Buffer.from(bytes).equals(Buffer.from(bodyOf(i, sizeOf(i, gen), gen))), `${name} gen ${gen}`).toBe(true);
  }
}

const some = Array.from({ length: 60 }, (_, k) => nameOf(k * 6 + 1));

/** Both transports must behave alike: Node's http modules (the default) and a fetch implementation. */
const TRANSPORTS: [string, HttpSourceOptions][] = [
  ["node:http", {}],
  ["fetch", { fetch: globalThis.fetch }],
];

describe.each(TRANSPORTS)("over %s", (_transport, transportOptions) => {
  const httpSource = (url: string, opts: HttpSourceOptions = {}): HttpSource =>
    new HttpSource(url, { ...transportOptions, ...opts });

  describe("HttpSource", () => {
    it("is exported from the root entry", () => {
      expect(HttpSourceFromRoot).toBe(HttpSource);
    });

    it("parses Content-Range", () => {
      expect(parseContentRange("bytes 0-9/10")).toEqual({ start: 0, end: 9, total: 10 });
      expect(parseContentRange("bytes */0")).toEqual({ start: undefined, end: undefined, total: 0 });
      expect(parseContentRange("bytes 5-9/*")).toEqual({ start: 5, end: 9, total: undefined });
      expect(parseContentRange("items 1-2/3")).toBeUndefined();
    });

    it("opens with one suffix GET (no HEAD), learns size and ETag from the response", async () => {
      reset(gen1);
      const source = httpSource(srv.url);
      const r = await DesReader.open(source);
      expect(srv.requests).toEqual([{ range: "bytes=-65536" }]);
      expect(r.size).toBe(gen1.length);
      expect(source.size).toBe(gen1.length);
      expect(source.version).toMatch(/^"v\d+"$/);
      // The cache key drops presigning parameters but keeps the rest of the query.
      expect(source.key).toBe(srv.url.replace(/X-Amz-Signature=abc&X-Amz-Expires=60&/, ""));
      const wants = (await Promise.all(some.map((n) => r.stat(n)))).map((st) => ({
        offset: st.offset,
        length: st.storedSize,
        item: st.name,
      }));
      const before = srv.requests.length;
      const got = await r.getMany(some);
      expectGen(got, 1);
      // Every later request is pinned with If-Match.
      for (const q of srv.requests.slice(1)) expect(q.ifMatch).toBe(source.version);
      // Planned by the remote cost model: exactly the reads the planner gives.
      expect(srv.requests.length - before).toBe(planReads(wants, REMOTE_COST).requests);
      await r.close();
    });

    it("follows a replaced object once (412 -> reopen), a second change is DesChangedError", async () => {
      reset(gen1);
      const r = await DesReader.open(httpSource(srv.url));
      expectGen(await r.getMany(some.slice(0, 5)), 1);
      srv.replace(gen2);
      expectGen(await r.getMany(some), 2);
      // Replace again while the reopened reader reads: the delay lets us slip a change in.
      srv.replace(gen3);
      // Right after the reopen (the suffix GET), replace once more.
      let sawTail = false;
      let replaced = false;
      srv.hook = (q) => {
        if (q.range?.startsWith("bytes=-")) sawTail = true;
        else if (sawTail && !replaced) {
          replaced = true;
          srv.replace(gen1);
        }
      };
      const e = await r.getMany(some, { maxGap: 0, maxSpan: 1, concurrency: 1 }).then(
        () => "ok",
        (err: unknown) => err,
      );
      expect(replaced).toBe(true);
      expect(e).toBeInstanceOf(DesChangedError);
      await r.close();
    });

    it("detects a change by ETag even when the server ignores If-Match", async () => {
      reset(gen1);
      srv.honourIfMatch = false;
      const source = httpSource(srv.url);
      const r = await DesReader.open(source);
      await r.list();
      srv.replace(gen2);
      expectGen(await r.getMany(some), 2);
      expect(source.version).toBe(`"v${srv.version}"`);
      await r.close();
    });

    it("uses Last-Modified when there is no ETag, and compares weak ETags without If-Match", async () => {
      reset(gen1);
      srv.etagStyle = "none";
      const s1 = httpSource(srv.url);
      const r1 = await DesReader.open(s1);
      expect(s1.version).toMatch(/^lm:/);
      srv.replace(gen2);
      expectGen(await r1.getMany(some), 2);
      reset(gen1);
      srv.etagStyle = "weak";
      const s2 = httpSource(srv.url);
      const r2 = await DesReader.open(s2);
      expectGen(await r2.getMany(some), 1);
      expect(srv.requests.every((q) => q.ifMatch === undefined)).toBe(true);
      srv.replace(gen2);
      expectGen(await r2.getMany(some), 2);
    });

    it("works with a server that ignores Range (whole-object answers)", async () => {
      reset(gen1);
      srv.honourRange = false;
      const r = await DesReader.open(httpSource(srv.url));
      expect(r.size).toBe(gen1.length);
      expectGen(await r.getMany(some), 1);
    });

    it("retries 5xx and short bodies with bounded backoff, then DesIoError", async () => {
      reset(gen1);
      const source = httpSource(srv.url, { retries: 3, retryBaseMs: 5, retryMaxMs: 20 });
      const r = await DesReader.open(source);
      await r.list();
      srv.fail = { status: 503, left: 2 };
      srv.short = { left: 0 };
      expectGen(await r.getMany(some), 1);
      srv.short = { left: 2 };
      expectGen(await r.getMany(some, { maxGap: 0, maxSpan: 1 }), 1);
      // The server runs in this process: let it take in what the batches' connections still carry.
      await new Promise((resolve) => setTimeout(resolve, 100));
      srv.requests.length = 0;
      srv.fail = { status: 500, left: 100 };
      await expect(r.get(some[3]!)).rejects.toBeInstanceOf(DesIoError);
      expect(srv.requests.length).toBe(4); // 1 + retries
      srv.fail = { status: 500, left: 0 };
      srv.requests.length = 0;
      srv.short = { left: 100 };
      await expect(r.get(some[4]!)).rejects.toBeInstanceOf(DesIoError);
      expect(srv.requests.length).toBe(4);
      expect(source.stats.retries).toBeGreaterThan(0);
      srv.short = { left: 0 };
      // 404 and other client errors are not retried.
      srv.requests.length = 0;
      srv.fail = { status: 404, left: 1 };
      await expect(r.get(some[5]!)).rejects.toBeInstanceOf(DesIoError);
      expect(srv.requests.length).toBe(1);
    });

    it("honours an AbortSignal", async () => {
      reset(gen1);
      const r = await DesReader.open(httpSource(srv.url));
      await r.list();
      srv.delayMs = 2000;
      const ac = new AbortController();
      const t0 = Date.now();
      const p = r.getMany(some, { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await expect(p).rejects.toBeInstanceOf(DesAbortedError);
      expect(Date.now() - t0).toBeLessThan(1500);
      srv.delayMs = 0;
      // The server runs in this process: let it take in the requests the batch had already sent
      // (a planned batch sends many at once), so the next test's counts start clean.
      await new Promise((resolve) => setTimeout(resolve, 200));
    });

    it("reads an empty object as not-an-archive without a second request", async () => {
      reset(new Uint8Array(0));
      await expect(DesReader.open(httpSource(srv.url))).rejects.toThrow(/too small/);
      expect(srv.requests).toHaveLength(1);
    });

    it("accepts a custom fetch and headers", async () => {
      reset(gen1);
      const seen: string[] = [];
      const f: typeof fetch = (input, init) => {
        seen.push(new Headers(init?.headers).get("authorization") ?? "");
        return fetch(input, init);
      };
      const r = await DesReader.open(httpSource(srv.url, { fetch: f, headers: { authorization: "Bearer t" } }));
      await r.get(some[0]!);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((h) => h === "Bearer t")).toBe(true);
    });
  });
});
