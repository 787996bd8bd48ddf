import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the proxy does to one request instead of forwarding it faithfully:
 * - `status`: answers 500 / 503 itself with an S3 error document (503 = SlowDown);
 * - `reset-before-headers`: destroys the client connection before any response;
 * - `reset-mid-body`: forwards the headers and part of the body, then destroys the connection;
 * - `short-body`: forwards a complete-looking response (Content-Length lowered) with part of the body;
 * - `delay`: waits `ms` before forwarding.
 */
export type Fault =
  | { kind: "status"; status: 500 | 503 }
  | { kind: "reset-before-headers" }
  | { kind: "reset-mid-body"; keep?: number }
  | { kind: "short-body"; keep?: number }
  | { kind: "delay"; ms: number };

export interface ProxyRequestInfo {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export interface ProxyStats {
  /** Requests received (each SDK retry is a request). */
  requests: number;
  /** Requests by HTTP method. */
  byMethod: Record<string, number>;
  /** Response body bytes sent to clients (the bytes a reader paid for). */
  bytesOut: number;
  /** Faults applied. */
  faults: number;
  /** Range headers of GET requests, in arrival order. */
  ranges: string[];
  /** Requests being served right now, and the most at once since the last reset. */
  inFlight: number;
  maxInFlight: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly stats: ProxyStats;
  /** Added to every request before it is forwarded (simulated round trip). */
  delayMs: number;
  /**
   * Caps each response body at this many bytes per second (0: no cap), like
   * the ~85-90 MB/s one S3 connection delivers. Faulted responses are not paced.
   */
  bytesPerSecond: number;
  /** Applies `fault` to the next `count` requests that match `filter` (default: GET requests). */
  inject(fault: Fault, count?: number, filter?: (req: ProxyRequestInfo) => boolean): void;
  /** Drops pending faults and zeroes the statistics. */
  reset(): void;
  close(): Promise<void>;
}

interface Pending {
  fault: Fault;
  left: number;
  filter: (req: ProxyRequestInfo) => boolean;
}

const isGet = (r: ProxyRequestInfo): boolean => r.method === "GET";

function s3Error(status: number): { body: string; code: string } {
  const code = status === 503 ? "SlowDown" : "InternalError";
  const message =
    status === 503 ? "Please reduce your request rate." : "We encountered an internal error. Please try again.";
  return {
    code,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`,
  };
}

/**
 * A loopback HTTP proxy in front of an S3 endpoint (moto) that counts
 * requests and bytes, adds latency, and injects faults on demand.
 */
export async function startFaultProxy(
  upstream: string,
  opts: { delayMs?: number; bytesPerSecond?: number } = {},
): Promise<FaultProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const pending: Pending[] = [];
  const stats: ProxyStats = {
    requests: 0,
    byMethod: {},
    bytesOut: 0,
    faults: 0,
    ranges: [],
    inFlight: 0,
    maxInFlight: 0,
  };
  const proxy = { delayMs: opts.delayMs ?? 0, bytesPerSecond: opts.bytesPerSecond ?? 0 };

  const take = (info: ProxyRequestInfo): Fault | undefined => {
    for (const p of pending) {
      if (p.left > 0 && p.filter(info)) {
        p.left--;
        if (p.left === 0) pending.splice(pending.indexOf(p), 1);
        stats.faults++;
        return p.fault;
      }
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const info: ProxyRequestInfo = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers };
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      stats.inFlight--;
    };
    // "finish": the last byte was handed to the socket, before the client can react to it.
    res.once("finish", end);
    res.once("close", end);
    stats.byMethod[info.method] = (stats.byMethod[info.method] ?? 0) + 1;
    if (info.method === "GET" && typeof req.headers.range === "string") stats.ranges.push(req.headers.range);
    const fault = take(info);
    const go = (): void => {
      if (fault?.kind === "status") {
        req.resume();
        const { body } = s3Error(fault.status);
        const bytes = Buffer.from(body);
        res.writeHead(fault.status, { "content-type": "application/xml", "content-length": bytes.length });
        res.end(bytes);
        stats.bytesOut += bytes.length;
        return;
      }
      if (fault?.kind === "reset-before-headers") {
        req.resume();
        req.socket.destroy();
        return;
      }
      const upstreamReq = http.request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (up) => {
          const status = up.statusCode ?? 502;
          if (fault?.kind === "reset-mid-body" || fault?.kind === "short-body") {
            const chunks: Buffer[] = [];
            up.on("data", (c: Buffer) => chunks.push(c));
            up.on("end", () => {
              const full = Buffer.concat(chunks);
              const keep = Math.min(full.length, fault.keep ?? Math.floor(full.length / 2));
              const part = full.subarray(0, keep);
              if (fault.kind === "short-body") {
                res.writeHead(status, { ...up.headers, "content-length": String(part.length) });
                res.end(part);
                stats.bytesOut += part.length;
              } else {
                res.writeHead(status, up.headers);
                res.flushHeaders();
                res.write(part, () => {
                  stats.bytesOut += part.length;
                  // Give the client a moment to see the partial body, then cut the connection.
                  setTimeout(() => res.socket?.destroy(), 5);
                });
              }
            });
            return;
          }
          res.writeHead(status, up.headers);
          const rate = proxy.bytesPerSecond;
          if (rate <= 0) {
            up.on("data", (c: Buffer) => {
              stats.bytesOut += c.length;
            });
            up.pipe(res);
            return;
          }
          // Paced: each chunk leaves no earlier than its byte position allows at `rate`.
          const t0 = performance.now();
          let sent = 0;
          up.on("data", (c: Buffer) => {
            up.pause();
            sent += c.length;
            stats.bytesOut += c.length;
            const due = t0 + (sent / rate) * 1000 - performance.now();
            setTimeout(
              () => {
                if (res.write(c)) up.resume();
                else res.once("drain", () => up.resume());
              },
              Math.max(0, due),
            );
          });
          up.on("end", () => {
            const due = t0 + (sent / rate) * 1000 - performance.now();
            setTimeout(() => res.end(), Math.max(0, due) + 1);
          });
          up.on("error", () => res.socket?.destroy());
        },
      );
      upstreamReq.on("error", (e) => {
        if (!res.headersSent) {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(`proxy: ${e.message}`);
        } else {
          res.socket?.destroy();
        }
      });
      req.pipe(upstreamReq);
    };
    const wait = (fault?.kind === "delay" ? fault.ms : 0) + proxy.delayMs;
    if (wait > 0) setTimeout(go, wait);
    else go();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    get delayMs() {
      return proxy.delayMs;
    },
    set delayMs(ms: number) {
      proxy.delayMs = ms;
    },
    get bytesPerSecond() {
      return proxy.bytesPerSecond;
    },
    set bytesPerSecond(rate: number) {
      proxy.bytesPerSecond = rate;
    },
    inject(fault, count = 1, filter = isGet) {
      pending.push({ fault, left: count, filter });
    },
    reset() {
      pending.length = 0;
      stats.requests = 0;
      stats.byMethod = {};
      stats.bytesOut = 0;
      stats.faults = 0;
      stats.ranges = [];
      stats.maxInFlight = stats.inFlight;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
