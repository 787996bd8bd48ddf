/**
 * The shape every benchmark reports in. `npm run bench` runs the benchmark
 * modules, prints their rows as Markdown, and writes bench/results/latest.json.
 */
export interface BenchRow {
  /** What was measured, e.g. "getMany, batches of 1,000". */
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** The baseline measured in the same run, e.g. "raw fs.readSync". */
  readonly baseline?: string;
  readonly baselineValue?: number;
  /** value / baselineValue, or the orientation the target states. */
  readonly ratio?: number;
  /** The target from the issue, as text, e.g. ">= 0.5 of raw". */
  readonly target?: string;
  readonly pass?: boolean;
}

export interface BenchReport {
  readonly name: string;
  /** What the workload is (sizes, counts, seed). */
  readonly workload: string;
  readonly rows: readonly BenchRow[];
  readonly notes?: readonly string[];
}

export interface Benchmark {
  readonly name: string;
  run(): Promise<BenchReport>;
}

/** Deterministic PRNG (mulberry32) so workloads are the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
}
