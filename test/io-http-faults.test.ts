import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesReader, HttpSource, MemorySink, DesWriter } from "../src/index.js";
import type { HttpSourceOptions } from "../src/index.js";
import { DEFAULT_TIMEOUTS } from "../src/io/timeout.js";

/** Byte `i` of the synthetic object. */
const byteAt = (i: number): number => (i * 31) & 0xff;
/** Every 64 KiB chunk of the synthetic object is the same (64 Ki x 31 is a multiple of 256). */
const PATTERN = Uint8Array.from({ length: 64 << 10 }, (_, k) => byteAt(k));
const BIG = 64 << 20;

interface Served {
  url: string;
  /** Body bytes handed to sockets, per request. */
  sent: number[];
  connections: number;
  close(): Promise<void>;
}

async function listen(server: http.Server | net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A server that ignores Range: every GET is a 200 with the whole object, written as fast as the client takes it. */
async function ignoringRange(size: number, body?: Uint8Array): Promise<Served> {
  const sent: number[] = [];
  let connections = 0;
  const server = http.createServer((_req, res) => {
    const i = sent.push(0) - 1;
    res.writeHead(200, { "content-length": String(size), etag: '"v1"' });
    let at = 0;
    const pump = (): void => {
      while (at < size && !res.destroyed) {
        const n = Math.min(64 << 10, size - at);
        const chunk = body ? body.subarray(at, at + n) : PATTERN.subarray(0, n);
        at += n;
        sent[i]! += n;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (at >= size) res.end();
    };
    res.on("close", () => undefined);
    pump();
  });
  server.on("connection", () => connections++);
  const url = await listen(server);
  return {
    url,
    sent,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Both transports must behave alike: Node's http modules (the default) and a fetch implementation. */
const TRANSPORTS: [string, HttpSourceOptions][] = [
  ["node:http", {}],
  ["fetch", { fetch: globalThis.fetch }],
];

describe.each(TRANSPORTS)("over %s", (_transport, transportOptions) => {
  const httpSource = (url: string, opts: HttpSourceOptions = {}): HttpSource =>
    new HttpSource(url, { ...transportOptions, ...opts });

  describe("a server that ignores Range (issue 7 item 16)", () => {
    let srv: Served;
    beforeAll(async () => {
      srv = await ignoringRange(BIG);
    });
    afterAll(() => srv.close());

    it("a read takes only the bytes up to the end of its range, then drops the connection", async () => {
      const src = httpSource(`${srv.url}/big`);
      const got = await src.read(1000, 100, undefined, undefined);
      expect([...got]).toEqual(Array.from({ length: 100 }, (_, k) => byteAt(1000 + k)));
      expect(src.stats.ignoredRanges).toBe(1);
      // One 64 KiB chunk at most, not 64 MiB.
      expect(src.stats.bytes).toBeLessThanOrEqual(64 << 10);
      await new Promise((r) => setTimeout(r, 50));
      // What the server managed to push into socket buffers before the close, far below the object.
      expect(srv.sent.at(-1)!).toBeLessThan(16 << 20);
    });

    it("requireRanges turns it into a clear DES_IO error", async () => {
      const src = httpSource(`${srv.url}/big`, { requireRanges: true });
      await expect(src.read(0, 10)).rejects.toMatchObject({
        code: "DES_IO",
        message: expect.stringMatching(/ignores Range/),
      });
    });

    it("a whole archive behind such a server still reads, each read bounded by the end of its range", async () => {
      const sink = new MemorySink();
      const w = await DesWriter.create(sink);
      for (let i = 0; i < 20; i++)
        await w.add(
          `e${i}`,
          Uint8Array.from({ length: 50_000 }, (_, k) => (k + i) & 0xff),
        );
      await w.close();
      const bytes = sink.bytes();
      const small = await ignoringRange(bytes.length, bytes);
      try {
        const src = httpSource(`${small.url}/a.des`);
        const r = await DesReader.open(src);
        const first = await r.get("e0");
        expect(first[7]).toBe(7);
        const before = src.stats.bytes;
        await r.get("e1");
        // e1 is near the start: reading it costs its end offset, not the archive.
        expect(src.stats.bytes - before).toBeLessThan(200_000);
        expect(src.stats.ignoredRanges).toBeGreaterThanOrEqual(2);
        await r.close();
      } finally {
        await small.close();
      }
    });
  });

  describe("timeouts (issue 7 item 10)", () => {
    it("defaults are 30 s for the response and 30 s for a stalled body", () => {
      expect(DEFAULT_TIMEOUTS).toEqual({ responseTimeoutMs: 30_000, bodyTimeoutMs: 30_000 });
    });

    it("a server that accepts and never answers: open fails with DES_IO after the retries, without any signal", async () => {
      let connections = 0;
      const sockets: net.Socket[] = [];
      const hole = net.createServer((s) => {
        connections++;
        sockets.push(s);
      });
      const url = await listen(hole);
      try {
        const src = httpSource(`${url}/x.des`, { responseTimeoutMs: 200, retries: 2, retryBaseMs: 1, retryMaxMs: 5 });
        const t0 = Date.now();
        await expect(DesReader.open(src)).rejects.toMatchObject({
          code: "DES_IO",
          message: expect.stringMatching(/no response within 200 ms.*after 3 attempts/),
        });
        expect(Date.now() - t0).toBeLessThan(3000);
        expect(src.stats.requests).toBe(3);
        expect(src.stats.retries).toBe(2);
        expect(connections).toBeGreaterThanOrEqual(3); // fetch may open a spare connection
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => hole.close(() => r()));
      }
    });

    it("a body that stalls midway times out and is retried; a slow but steady body is fine", async () => {
      let mode: "stall" | "steady" = "stall";
      let requests = 0;
      const server = http.createServer((_req, res) => {
        requests++;
        res.writeHead(206, { "content-range": "bytes 0-9/10", "content-length": "10", etag: '"e"' });
        if (mode === "stall") {
          res.write(Uint8Array.of(1, 2, 3)); // then nothing
          return;
        }
        let i = 0;
        const tick = setInterval(() => {
          res.write(Uint8Array.of(i));
          if (++i === 10) {
            clearInterval(tick);
            res.end();
          }
        }, 40);
      });
      const url = await listen(server);
      try {
        const src = httpSource(`${url}/x`, { bodyTimeoutMs: 250, retries: 1, retryBaseMs: 1 });
        await expect(src.readTail(10)).rejects.toMatchObject({
          code: "DES_IO",
          message: expect.stringMatching(/stalled for 250 ms/),
        });
        expect(requests).toBe(2);
        mode = "steady"; // 400 ms in all, never 250 ms without a byte
        const t = await src.readTail(10);
        expect([...t.bytes]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      } finally {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });

    it("the caller's abort still wins over the timeout, as DES_ABORTED", async () => {
      const sockets: net.Socket[] = [];
      const hole = net.createServer((s) => sockets.push(s));
      const url = await listen(hole);
      try {
        const src = httpSource(`${url}/x`, { responseTimeoutMs: 5000 });
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 50);
        await expect(src.readTail(10, ac.signal)).rejects.toMatchObject({ code: "DES_ABORTED" });
      } finally {
        await new Promise<void>((r) => {
          for (const c of sockets) c.destroy();
          hole.close(() => r());
        });
      }
    });
  });
});
