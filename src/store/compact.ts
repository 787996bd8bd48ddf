import type { DesReader } from "../read/reader.js";
import type { DesWriter } from "../write/writer.js";
import type { PartFinder } from "./finder.js";
import { parseDayKey, singlePartKey } from "./layout.js";
import type { PartKey, ShardLayout } from "./layout.js";
import type { PartBackend } from "./parts.js";

const BATCH = 512;

/** Copies every entry of `r` not yet in `seen` (bodies and meta) into `w`, in batches. */
async function copyEntries(r: DesReader, w: DesWriter, seen: Set<string>): Promise<number> {
  const names = (await r.list()).filter((n) => !seen.has(n));
  let copied = 0;
  for (let i = 0; i < names.length; i += BATCH) {
    const chunk = names.slice(i, i + BATCH);
    const [bodies, metas] = await Promise.all([r.getMany(chunk), r.getMetaMany(chunk)]);
    for (const n of chunk) {
      const meta = metas.get(n);
      await w.add(n, bodies.get(n)!, meta === undefined ? {} : { meta });
      seen.add(n);
      copied++;
    }
  }
  return copied;
}

/**
 * Merges each shard's parts of `day` into its single part `<day>/<shard>.des`:
 * the merged part is written in full (atomically replacing an earlier one),
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
    let count = 0;
    await backend.replace(target, async (w) => {
      const seen = new Set<string>();
      for (const key of sources) count += await finder.withReader(key, (r) => copyEntries(r, w, seen));
    });
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
