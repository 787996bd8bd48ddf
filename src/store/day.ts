import type { PartFinder } from "./finder.js";
import { parseDayKey } from "./layout.js";
import type { ShardLayout } from "./layout.js";
import type { PartBackend } from "./parts.js";

/** True when `name` (a Snowflake name) is of `day` (`YYYY-MM-DD`). */
export function nameOfDay(name: string, day: string): boolean {
  return name.includes(`_${day.replace(/-/g, "")}_(`);
}

/**
 * Every name of a day, sorted: the names still in journals (`local`) and the
 * names of every part of that day the backend lists.
 */
export async function listDay(
  local: Iterable<string>,
  backend: PartBackend,
  finder: PartFinder,
  day: string,
  bits: number,
  layout: ShardLayout,
): Promise<string[]> {
  const names = new Set<string>();
  for (const name of local) if (nameOfDay(name, day)) names.add(name);
  for (const key of await backend.list(`${day}/`)) {
    if (!parseDayKey(key, day, bits, layout)) continue;
    for (const n of await finder.withReader(key, (r) => r.list())) names.add(n);
  }
  return [...names].sort();
}
