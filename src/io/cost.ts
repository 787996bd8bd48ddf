/**
 * What a read costs on a medium, for the read planner (src/read/plan.ts).
 * A source states its defaults in `ReadHints.cost`; a reader or a single
 * call may override any field.
 */
export interface CostModel {
  /** Time from sending a request to its first byte, in ms. */
  readonly firstByteMs: number;
  /** Transfer rate of one connection, in bytes per ms (90 MB/s = 90,000). */
  readonly bytesPerMs: number;
  /** Requests in flight at once. */
  readonly maxConcurrency: number;
  /**
   * Rate of a link all connections share (a Lambda far from its bucket, a
   * CDN edge), in bytes per ms. Absent or Infinity: no shared limit (an
   * override must say Infinity to lift the limit of the model it overrides).
   */
  readonly linkBytesPerMs?: number;
  /**
   * Client time per request that does not overlap with other requests, in ms:
   * building the request, parsing the response headers, scheduling its body
   * (~0.2-0.5 ms with HttpSource's default transport, twice that or more with
   * Node's fetch). Absent: 0.
   */
  readonly requestCpuMs?: number;
  /**
   * Bytes per ms the client host itself can take in (its CPU receiving and
   * copying bodies), in the same serial time as `requestCpuMs`: a batch of k
   * reads moving B bytes takes at least
   * `k * requestCpuMs + B / clientBytesPerMs + firstByteMs` however many are
   * in flight. Absent: no such limit. Unlike `linkBytesPerMs` (a network
   * the connections share, which runs while the client works), this is the
   * client's own time.
   */
  readonly clientBytesPerMs?: number;
  /** Bytes of planned reads in flight at once; a read bigger than this runs alone. */
  readonly maxInflightBytes: number;
  /** Never merge reads into one longer than this. */
  readonly maxSpan: number;
  /**
   * What the planner minimises: `latency` (default), the estimated wall time
   * of the batch; `requests`, the number of reads (for request-priced
   * storage), then wall time; or explicit weights.
   */
  readonly objective?: "latency" | "requests" | CostWeights;
}

/** A weighted objective: `perRequest * requests + perByte * bytes + perMs * estimated wall ms`. */
export interface CostWeights {
  readonly perRequest: number;
  readonly perByte: number;
  readonly perMs: number;
}

/**
 * Object stores and CDNs: 20-50 ms to first byte, ~85-90 MB/s per
 * connection, many connections in parallel; the client's own network (a
 * Lambda, a small instance) moves about 1 Gbit/s in all, so bytes merged
 * over gaps are never free; and each request costs the client ~0.3 ms of
 * its own time, so thousands of tiny GETs are never free either.
 */
export const REMOTE_COST: CostModel = {
  firstByteMs: 25,
  bytesPerMs: 90_000,
  linkBytesPerMs: 125_000,
  requestCpuMs: 0.3,
  maxConcurrency: 64,
  maxInflightBytes: 64 << 20,
  maxSpan: 8 << 20,
};

/**
 * A local file in the page cache or on SSD: a read costs a few microseconds
 * of system call and copy, the copy ~1 GB/s. Merging then pays only across
 * gaps of a few KiB.
 */
export const LOCAL_COST: CostModel = {
  firstByteMs: 0.004,
  bytesPerMs: 1_000_000,
  maxConcurrency: 8,
  maxInflightBytes: 64 << 20,
  maxSpan: 1 << 20,
};
