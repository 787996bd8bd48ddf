import { describe, expect, it } from "vitest";
import { runWithin } from "../src/format/runs.js";

/** Splits `lengths` into runs with runWithin. */
function runs(lengths: number[], limit: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < lengths.length;) {
    const { end, total } = runWithin(i, lengths.length, limit, (k) => lengths[k]!);
    const run = lengths.slice(i, end);
    expect(total).toBe(run.reduce((a, b) => a + b, 0));
    out.push(run);
    i = end;
  }
  return out;
}

describe("runWithin", () => {
  it("takes consecutive items while their total stays within the limit, at least one per run", () => {
    expect(runs([3, 3, 3, 3], 6)).toEqual([
      [3, 3],
      [3, 3],
    ]);
    expect(runs([3, 4, 10, 1, 1], 7)).toEqual([[3, 4], [10], [1, 1]]);
    expect(runs([0, 0, 5, 0], 5)).toEqual([[0, 0, 5, 0]]);
    expect(runs([], 5)).toEqual([]);
    expect(runWithin(2, 2, 10, () => 1)).toEqual({ end: 2, total: 0 });
  });
});
