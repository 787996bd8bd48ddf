import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HttpSource } from "../src/index.js";

const OBJECT = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff);

interface Seen {
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

interface Srv {
  url: string;
  seen: Seen[];
  connections: number;
  closed: number;
  server: http.Server;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** A range server for OBJECT; `route` may answer a request itself (redirects, errors, slow bodies). */
async function serve(route?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<Srv> {
  const srv: Srv = { url: "", seen: [], connections: 0, closed: 0, server: undefined as unknown as http.Server };
  const server = http.createServer((req, res) => {
    srv.seen.push({ url: req.url ?? "", range: req.headers.range, authorization: req.headers.authorization });
    if (route?.(req, res)) return;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    const suffix = /^bytes=-(\d+)$/.exec(req.headers.range ?? "");
    const start = m ? Number(m[1]) : suffix ? OBJECT.length - Number(suffix[1]) : 0;
    const end = m ? Number(m[2]) : OBJECT.length - 1;
    res.writeHead(206, {
      "content-range": `bytes ${start}-${end}/${OBJECT.length}`,
      "content-length": String(end - start + 1),
      etag: '"v1"',
    });
    res.end(OBJECT.subarray(start, end + 1));
  });
  server.on("connection", (s) => {
    srv.connections++;
    s.on("close", () => srv.closed++);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  srv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  srv.server = server;
  return srv;
}

describe("HttpSource's default transport (node:http with keep-alive)", () => {
  it("does not go through the global fetch, and reuses one connection for reads one after another", async () => {
    const srv = await serve();
    const original = globalThis.fetch;
    let fetchCalls = 0;
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      fetchCalls++;
      return original(...args);
    }) as typeof fetch;
    try {
      const src = new HttpSource(`${srv.url}/o`);
      await src.readTail(1000);
      for (let i = 0; i < 20; i++) {
        const got = await src.read(i * 1000, 500);
        expect(got[0]).toBe(OBJECT[i * 1000]);
        expect(got.length).toBe(500);
      }
      expect(fetchCalls).toBe(0);
      expect(srv.seen).toHaveLength(21);
      expect(srv.connections).toBe(1);
      // A fetch given in the options is used instead.
      const viaFetch = new HttpSource(`${srv.url}/o`, { fetch: globalThis.fetch });
      await viaFetch.readTail(10);
      expect(fetchCalls).toBe(1);
    } finally {
      globalThis.fetch = original;
    }
  });

  it("releases the connection of an empty object's answer, whose body it does not read", async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(416, { "content-range": "bytes */0", "content-type": "application/xml", etag: '"e"' });
      res.end(`<?xml version="1.0"?><Error><Code>InvalidRange</Code>${"x".repeat(300)}</Error>`);
      return true;
    });
    const src = new HttpSource(`${srv.url}/empty`);
    for (let i = 0; i < 2; i++) expect((await src.readTail(100)).size).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    // Neither connection is left taken by an unread body.
    expect(srv.connections - srv.closed).toBe(0);
  });

  it("follows redirects like fetch, keeping Range; authorization only within the origin", async () => {
    const target = await serve();
    const front = await serve((req, res) => {
      if (req.url === "/same") res.writeHead(307, { location: "/real" }).end();
      else if (req.url === "/away") res.writeHead(302, { location: `${target.url}/elsewhere` }).end();
      else if (req.url === "/loop") res.writeHead(301, { location: "/loop" }).end();
      else return false;
      return true;
    });
    const same = new HttpSource(`${front.url}/same`, { headers: { authorization: "Bearer t" } });
    const t = await same.readTail(100);
    expect(t.size).toBe(OBJECT.length);
    expect([...(await same.read(5000, 10))]).toEqual([...OBJECT.subarray(5000, 5010)]);
    expect(front.seen.map((s) => [s.url, s.range, s.authorization])).toEqual([
      ["/same", "bytes=-100", "Bearer t"],
      ["/real", "bytes=-100", "Bearer t"],
      ["/same", "bytes=5000-5009", "Bearer t"],
      ["/real", "bytes=5000-5009", "Bearer t"],
    ]);
    const away = new HttpSource(`${front.url}/away`, { headers: { authorization: "Bearer t" } });
    expect([...(await away.read(7, 3))]).toEqual([...OBJECT.subarray(7, 10)]);
    expect(target.seen.at(-1)).toEqual({ url: "/elsewhere", range: "bytes=7-9", authorization: undefined });
    // The header's case does not matter: a caller's "Authorization" stays behind too.
    const cased = new HttpSource(`${front.url}/away`, { headers: { Authorization: "Bearer t" } });
    expect([...(await cased.read(11, 2))]).toEqual([...OBJECT.subarray(11, 13)]);
    expect(target.seen.at(-1)).toEqual({ url: "/elsewhere", range: "bytes=11-12", authorization: undefined });
    expect(front.seen.at(-1)).toEqual({ url: "/away", range: "bytes=11-12", authorization: "Bearer t" });
    // A redirect loop ends after 20 hops as an I/O error.
    const loop = new HttpSource(`${front.url}/loop`, { retries: 0 });
    const before = front.seen.length;
    await expect(loop.readTail(10)).rejects.toMatchObject({ code: "DES_IO" });
    expect(front.seen.length - before).toBe(21);
  });

  it.each([
    ["the default transport", undefined],
    ["a fetch transport", globalThis.fetch],
  ])(
    "an error answer with a huge body through %s: DES_IO naming the status, reading only the start of the body",
    async (_label, fetchImpl) => {
      let sent = 0;
      const srv = await serve((_req, res) => {
        res.writeHead(403, { "content-type": "text/plain" });
        const chunk = Buffer.alloc(64 << 10, "x");
        const pump = (): void => {
          while (sent < 256 << 20 && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        res.on("close", () => undefined);
        pump();
        return true;
      });
      const src = new HttpSource(`${srv.url}/o`, { retries: 0, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
      await expect(src.readTail(10)).rejects.toMatchObject({
        code: "DES_IO",
        message: expect.stringMatching(/HTTP 403 x{200}$/),
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(sent).toBeLessThan(32 << 20);
    },
  );

  it("a kept-alive connection the server closed as the next request left: sent again on a new one, not counted as a retry", async () => {
    const perSocket = new Map<unknown, number>();
    const srv = await serve((req) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n === 1) return false;
      req.socket.destroy(); // the server had given up on this idle connection
      return true;
    });
    const src = new HttpSource(`${srv.url}/o`, { retries: 0 });
    expect(Array.from(await src.read(0, 10))).toEqual(Array.from(OBJECT.subarray(0, 10)));
    expect(Array.from(await src.read(10, 10))).toEqual(Array.from(OBJECT.subarray(10, 20)));
    expect(srv.seen.map((s) => s.range)).toEqual(["bytes=0-9", "bytes=10-19", "bytes=10-19"]);
    expect(srv.connections).toBe(2);
  });

  it("when every pooled connection is dead, the resend goes out on a new connection, not on the next dead one", async () => {
    let dropping = false;
    const perSocket = new Map<unknown, number>();
    const srv = await serve((req) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (!dropping || n === 1) return false;
      req.socket.destroy(); // the server restarted: no idle connection is valid any more
      return true;
    });
    const src = new HttpSource(`${srv.url}/o`, { retries: 0 });
    // Three reads at once leave three idle connections in the pool.
    await Promise.all([src.read(0, 10), src.read(10, 10), src.read(20, 10)]);
    expect(srv.connections).toBe(3);
    dropping = true;
    expect(Array.from(await src.read(100, 10))).toEqual(Array.from(OBJECT.subarray(100, 110)));
    expect(srv.connections).toBe(4);
  });

  it("a reset of a new connection is not resent by the transport: with retries 0 it fails as DES_IO", async () => {
    const srv = await serve((req) => {
      req.socket.destroy();
      return true;
    });
    const src = new HttpSource(`${srv.url}/o`, { retries: 0 });
    await expect(src.read(0, 10)).rejects.toMatchObject({ code: "DES_IO" });
    expect(srv.seen).toHaveLength(1);
  });

  it("an abort in the middle of a body: DES_ABORTED at once, and the connection is dropped", async () => {
    const srv = await serve((req, res) => {
      if (req.headers.range === "bytes=-10") return false;
      res.writeHead(206, { "content-range": "bytes 0-99999/100000", "content-length": "100000", etag: '"v1"' });
      res.write(OBJECT.subarray(0, 1000)); // then nothing
      return true;
    });
    const src = new HttpSource(`${srv.url}/o`);
    await src.readTail(10);
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 50);
    await expect(src.read(0, 100_000, ac.signal)).rejects.toMatchObject({ code: "DES_ABORTED" });
    expect(Date.now() - t0).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.closed).toBeGreaterThanOrEqual(1);
  });
});
