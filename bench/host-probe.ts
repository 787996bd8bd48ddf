/**
 * The planning benchmark's host probe: this host's link rate and per-request
 * client cost, measured once with the benchmark's own HttpSource client
 * against the range server unpaced.
 */
import { HttpSource } from "../src/index.js";
import { rng } from "./lib.js";
import { startRangeServer } from "./range-server.js";

const CONCURRENCY = 64;
/** Host link probe: this many parallel GETs of HOST_GET_BYTES each, median of HOST_REPS. */
export const HOST_GETS = 64;
export const HOST_GET_BYTES = 2 << 20;
export const HOST_REPS = 3;
/** Per-request probe: this many GETs of TINY_BYTES at CONCURRENCY, median of HOST_REPS. */
export const TINY_GETS = 2000;
export const TINY_BYTES = 256;

/** What this host moves and spends per request, measured with the benchmark's own client and server. */
export interface HostCapacity {
  readonly linkBytesPerMs: number;
  readonly requestCpuMs: number;
  readonly linkRuns: number[];
  readonly cpuRuns: number[];
  /** The same per-request probe through HttpSource's `fetch` option (the global fetch), for comparison. */
  readonly fetchCpuRuns: number[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function inParallel(count: number, lanes: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, count) }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

/** The host's link rate and per-request client cost: the range server unpaced, the same HttpSource client. */
export async function measureHost(file: string, log: (s: string) => void): Promise<HostCapacity> {
  const server = await startRangeServer(file, { firstByteMs: 0, bytesPerMs: Infinity });
  try {
    const source = new HttpSource(server.url);
    const viaFetch = new HttpSource(server.url, { fetch: globalThis.fetch });
    const { size } = await source.readTail(4096);
    await viaFetch.readTail(4096);
    const r = rng(77);
    const offsetOf = (len: number): number => Math.floor(r() * (size - len));
    // Warm-up: open the connections, compile the paths.
    await inParallel(512, CONCURRENCY, async () => void (await source.read(offsetOf(TINY_BYTES), TINY_BYTES)));
    await inParallel(512, CONCURRENCY, async () => void (await viaFetch.read(offsetOf(TINY_BYTES), TINY_BYTES)));
    await inParallel(
      HOST_GETS,
      HOST_GETS,
      async () => void (await source.read(offsetOf(HOST_GET_BYTES), HOST_GET_BYTES)),
    );
    const linkRuns: number[] = [];
    const cpuRuns: number[] = [];
    const fetchCpuRuns: number[] = [];
    for (let rep = 0; rep < HOST_REPS; rep++) {
      let t0 = performance.now();
      await inParallel(
        HOST_GETS,
        HOST_GETS,
        async () => void (await source.read(offsetOf(HOST_GET_BYTES), HOST_GET_BYTES)),
      );
      linkRuns.push((HOST_GETS * HOST_GET_BYTES) / (performance.now() - t0));
      t0 = performance.now();
      await inParallel(TINY_GETS, CONCURRENCY, async () => void (await source.read(offsetOf(TINY_BYTES), TINY_BYTES)));
      cpuRuns.push((performance.now() - t0) / TINY_GETS);
      t0 = performance.now();
      await inParallel(
        TINY_GETS,
        CONCURRENCY,
        async () => void (await viaFetch.read(offsetOf(TINY_BYTES), TINY_BYTES)),
      );
      fetchCpuRuns.push((performance.now() - t0) / TINY_GETS);
    }
    const host = {
      linkBytesPerMs: median(linkRuns),
      requestCpuMs: median(cpuRuns),
      linkRuns,
      cpuRuns,
      fetchCpuRuns,
    };
    log(`host: ${(host.linkBytesPerMs / 1000).toFixed(0)} MB/s, ${host.requestCpuMs.toFixed(3)} ms per request`);
    return host;
  } finally {
    await server.close();
  }
}
