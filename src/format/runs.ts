/**
 * The run of consecutive items from `start` (below `count`) whose lengths
 * together stay within `limit`: at least one item, so an item longer than
 * `limit` is a run of its own. Returns where the run ends and its total.
 */
export function runWithin(
  start: number,
  count: number,
  limit: number,
  lengthOf: (i: number) => number,
): { end: number; total: number } {
  let end = start;
  let total = 0;
  while (end < count) {
    const len = lengthOf(end);
    if (end > start && total + len > limit) break;
    total += len;
    end++;
  }
  return { end, total };
}
