import type { PartFinder } from "./finder.js";
import { parseDayKey, singlePartKey } from "./layout.js";
import type { PartKey, ShardLayout } from "./layout.js";
import type { PartBackend } from "./parts.js";

/**
 * Merges each shard's parts of `day` into its single part `<day>/<shard>.des`:
 * the merged part is written in full by `merge` (atomically replacing an earlier one),
 * then the node parts it absorbed are deleted. A reader holding an old
 * listing finds a deleted part gone, lists again and finds the merged one.
 * Parts sealed after the listing are left for the next compaction.
 */
export async function compactParts(
  backend: PartBackend,
  finder: PartFinder,
  day: string,
  bits: number,
  layout: ShardLayout,
): Promise<{ shards: number; partsMerged: number; entries: number; removed: string[] }> {
  const byShard = new Map<number, PartKey[]>();
  for (const key of await backend.list(`${day}/`)) {
    const pk = parseDayKey(key, day, bits, layout);
    if (!pk) continue;
    let l = byShard.get(pk.shard);
    if (!l) byShard.set(pk.shard, (l = []));
    l.push(pk);
  }
  let shards = 0;
  let partsMerged = 0;
  let entries = 0;
  const removed: string[] = [];
  for (const [shard, parts] of [...byShard].sort((a, b) => a[0] - b[0])) {
    const nodeParts = parts.filter((p) => p.nodeId !== undefined);
    if (nodeParts.length === 0) continue;
    const target = singlePartKey(day, shard, bits, layout);
    // The newest copy of a name wins: node parts in key order (node, then F), the old single part last.
    const sources = [
      ...nodeParts
        .map((p) => p.key)
        .sort()
        .reverse(),
      ...parts.filter((p) => p.nodeId === undefined).map((p) => p.key),
    ];
    // Stored bytes are copied as they are (no inflating and re-encoding of bodies).
    const count = await backend.mergeInto(target, sources);
    finder.evict(target);
    for (const p of nodeParts) {
      await backend.delete(p.key);
      finder.evict(p.key);
      removed.push(p.key);
    }
    shards++;
    partsMerged += sources.length;
    entries += count;
  }
  return { shards, partsMerged, entries, removed };
}
