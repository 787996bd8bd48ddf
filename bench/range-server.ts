/**
 * A model of an object store for benchmarks (not product code): a loopback
 * HTTP server that serves one file with `Range` (`bytes=a-b`), suffix ranges
 * (`bytes=-n`) and `If-Match`, and takes time like a remote store does: a
 * first-byte latency per request, then the body at a per-connection rate,
 * optionally also through one link of fixed bandwidth shared by every
 * connection (a Lambda far from its bucket, a CDN edge).
 *
 * Bodies are read from the file with positional reads, chunk by chunk, so a
 * big archive costs nothing per request (moto copies the whole object on
 * every GET, which makes a benchmark on a big archive measure moto).
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface RangeServerOptions {
  /** Delay before the first byte of every response, ms. */
  firstByteMs: number;
  /** Rate of each connection, bytes per ms (90 MB/s = 90,000). */
  bytesPerMs: number;
  /** Rate of a link shared by all connections, bytes per ms (100 Mbit/s = 12,500). Default: none. */
  linkBytesPerMs?: number;
}

export interface RangeServer {
  readonly url: string;
  readonly stats: { requests: number; bytes: number; peakConnections: number; peakInFlight: number };
  /** Changes the timing for the requests that follow. */
  configure(opts: RangeServerOptions): void;
  resetStats(): void;
  close(): Promise<void>;
}

const CHUNK = 64 * 1024;

export async function startRangeServer(file: string, initial: RangeServerOptions): Promise<RangeServer> {
  let opts = initial;
  const fd = fs.openSync(file, "r");
  const st = fs.fstatSync(fd);
  const size = st.size;
  const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const stats = { requests: 0, bytes: 0, peakConnections: 0, peakInFlight: 0 };
  /** Requests received and not yet answered in full. */
  let inFlight = 0;
  /** When the shared link is next free, ms (performance.now clock). */
  let linkFree = 0;
  let open = 0;

  const wait = (until: number): Promise<void> => {
    const ms = until - performance.now();
    return ms >= 1 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    inFlight++;
    if (inFlight > stats.peakInFlight) stats.peakInFlight = inFlight;
    res.once("close", () => inFlight--);
    const started = performance.now();
    const range = parseRange(req.headers.range, size);
    const ifMatch = req.headers["if-match"];
    if (ifMatch !== undefined && ifMatch !== etag && ifMatch !== "*") {
      res.writeHead(412, { etag });
      res.end();
      return;
    }
    if (range === "unsatisfiable") {
      res.writeHead(416, { "content-range": `bytes */${size}`, etag });
      res.end();
      return;
    }
    const [start, end] = range ?? [0, size - 1];
    const length = end - start + 1;
    const headers: http.OutgoingHttpHeaders = { "content-length": length, etag, "accept-ranges": "bytes" };
    if (range) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    const cfg = opts;
    void (async () => {
      await wait(started + cfg.firstByteMs);
      res.writeHead(range ? 206 : 200, headers);
      let sent = 0;
      let connAt = performance.now();
      while (sent < length) {
        const n = Math.min(CHUNK, length - sent);
        const buf = Buffer.allocUnsafe(n);
        fs.readSync(fd, buf, 0, n, start + sent);
        // The chunk leaves when this connection and the shared link have both carried it.
        connAt += n / cfg.bytesPerMs;
        let at = connAt;
        if (cfg.linkBytesPerMs) {
          linkFree = Math.max(linkFree, performance.now()) + n / cfg.linkBytesPerMs;
          at = Math.max(at, linkFree);
        }
        await wait(at);
        if (res.destroyed) return;
        const ok = res.write(buf);
        sent += n;
        stats.bytes += n;
        if (!ok) await new Promise((resolve) => res.once("drain", resolve));
      }
      res.end();
    })().catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", (socket) => {
    open++;
    if (open > stats.peakConnections) stats.peakConnections = open;
    socket.setNoDelay(true);
    socket.on("close", () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/archive`,
    stats,
    configure(next) {
      opts = next;
      linkFree = 0;
    },
    resetStats() {
      stats.requests = 0;
      stats.bytes = 0;
      stats.peakConnections = open;
      stats.peakInFlight = inFlight;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.closeSync(fd);
    },
  };
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`; undefined when absent (whole object). */
function parseRange(header: string | undefined, size: number): [number, number] | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (!(n > 0) || size === 0) return "unsatisfiable";
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return [start, end];
}
