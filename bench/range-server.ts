/**
 * A model of an object store for benchmarks (not product code): a loopback
 * HTTP server that serves one file with `Range` (`bytes=a-b`), suffix ranges
 * (`bytes=-n`) and `If-Match`, and takes time like a remote store does: a
 * first-byte latency per request, then the body at a per-connection rate,
 * optionally also through one link of fixed bandwidth shared by every
 * connection (a Lambda far from its bucket, a CDN edge).
 *
 * The server runs on a thread of its own, as a store runs on other machines:
 * its timers and reads do not take the event loop of the client measured.
 * Bodies are read from the file with positional reads, chunk by chunk, so a
 * big archive costs nothing per request (moto copies the whole object on
 * every GET, which makes a benchmark on a big archive measure moto).
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

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

/**
 * Starts the server on a thread of its own (the default), so that its work
 * (timers, pacing, positional reads) does not run on the event loop of the
 * client being measured: a store's servers are not in the client's process.
 * `inProcess: true` runs it on the calling thread.
 */
export async function startRangeServer(
  file: string,
  initial: RangeServerOptions,
  { inProcess = false }: { inProcess?: boolean } = {},
): Promise<RangeServer> {
  if (inProcess) return serve(file, initial, new Float64Array(SHARED_SLOTS));
  const shared = new Float64Array(new SharedArrayBuffer(SHARED_SLOTS * 8));
  writeOptions(shared, initial);
  // The bench runs its TypeScript through tsx: the thread registers tsx's hooks, then loads this module.
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  const self = JSON.stringify(import.meta.url);
  const worker = new Worker(`import(${tsx}).then((t) => { t.register(); return import(${self}); })`, {
    eval: true,
    workerData: { file, shared },
  });
  const url = await new Promise<string>((resolve, reject) => {
    worker.once("message", (m: { url: string }) => resolve(m.url));
    worker.once("error", reject);
  });
  return {
    url,
    stats: statsOf(shared),
    configure: (next) => writeOptions(shared, next),
    resetStats: () => resetStats(shared),
    async close() {
      await worker.terminate();
    },
  };
}

/** Slots of the memory shared with a server thread: counters, then the timing options. */
const S_REQUESTS = 0;
const S_BYTES = 1;
const S_PEAK_CONN = 2;
const S_PEAK_INFLIGHT = 3;
const S_OPEN = 4;
const S_INFLIGHT = 5;
const S_FIRST_BYTE = 6;
const S_RATE = 7;
const S_LINK = 8;
/** Bumped by every configure: the server thread then restarts its shared-link clock. */
const S_GENERATION = 9;
const SHARED_SLOTS = 10;

function writeOptions(shared: Float64Array, o: RangeServerOptions): void {
  shared[S_FIRST_BYTE] = o.firstByteMs;
  shared[S_RATE] = o.bytesPerMs;
  shared[S_LINK] = o.linkBytesPerMs ?? 0;
  shared[S_GENERATION] = shared[S_GENERATION]! + 1;
}

/** The counters in shared memory, as the server updates them and the benchmark reads them. */
function statsOf(shared: Float64Array): RangeServer["stats"] {
  const slot = (i: number): PropertyDescriptor => ({
    get: () => shared[i],
    set: (v: number) => void (shared[i] = v),
    enumerable: true,
  });
  return Object.defineProperties({} as RangeServer["stats"], {
    requests: slot(S_REQUESTS),
    bytes: slot(S_BYTES),
    peakConnections: slot(S_PEAK_CONN),
    peakInFlight: slot(S_PEAK_INFLIGHT),
  });
}

/** Counts from now on; the peaks start from what is open and in flight now. */
function resetStats(shared: Float64Array): void {
  shared[S_REQUESTS] = 0;
  shared[S_BYTES] = 0;
  shared[S_PEAK_CONN] = shared[S_OPEN]!;
  shared[S_PEAK_INFLIGHT] = shared[S_INFLIGHT]!;
}

if (!isMainThread && (workerData as { file?: string } | null)?.file !== undefined) {
  const { file, shared } = workerData as { file: string; shared: Float64Array };
  void serve(file, undefined, shared).then((s) => parentPort!.postMessage({ url: s.url }));
}

async function serve(
  file: string,
  initial: RangeServerOptions | undefined,
  shared: Float64Array,
): Promise<RangeServer> {
  if (initial) writeOptions(shared, initial);
  let generation = shared[S_GENERATION]!;
  const current = (): RangeServerOptions => {
    if (shared[S_GENERATION] !== generation) {
      generation = shared[S_GENERATION]!;
      linkFree = 0;
    }
    const link = shared[S_LINK]!;
    return {
      firstByteMs: shared[S_FIRST_BYTE]!,
      bytesPerMs: shared[S_RATE]!,
      ...(link > 0 ? { linkBytesPerMs: link } : {}),
    };
  };
  const fd = fs.openSync(file, "r");
  const st = fs.fstatSync(fd);
  const size = st.size;
  const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const stats = statsOf(shared);
  /** Requests received and not yet answered in full. */
  let inFlight = 0;
  /** When the shared link is next free, ms (performance.now clock). */
  let linkFree = 0;
  let open = 0;
  const setInFlight = (n: number): void => void (shared[S_INFLIGHT] = inFlight = n);
  const setOpen = (n: number): void => void (shared[S_OPEN] = open = n);

  const wait = (until: number): Promise<void> => {
    const ms = until - performance.now();
    return ms >= 1 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    setInFlight(inFlight + 1);
    if (inFlight > stats.peakInFlight) stats.peakInFlight = inFlight;
    res.once("close", () => setInFlight(inFlight - 1));
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
    const cfg = current();
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
    setOpen(open + 1);
    if (open > stats.peakConnections) stats.peakConnections = open;
    socket.setNoDelay(true);
    socket.on("close", () => setOpen(open - 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/archive`,
    stats,
    configure: (next) => writeOptions(shared, next),
    resetStats: () => resetStats(shared),
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
