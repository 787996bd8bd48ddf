import type { ParsedName } from "../naming/name.js";
import { coalesceRanges, sliceWant } from "../read/coalesce.js";
import type { Journal, JournalRecord } from "./journal.js";
import type { PartFinder } from "./finder.js";
import { candidateParts } from "./layout.js";
import type { PartKey } from "./layout.js";

/**
 * Sealed names: each goes to its first candidate part; every part gets one
 * `getMany` (one coalesced batch) for all names sent to it; names a part
 * did not hold go on to their next candidate. Names left over take the
 * single-name path (which lists again when the listing is stale).
 */
export async function readManySealed(
  finder: PartFinder,
  names: readonly string[],
  parse: (name: string) => { p: ParsedName; shard: number },
  getOne: (name: string) => Promise<Uint8Array>,
  out: Map<string, Uint8Array>,
): Promise<void> {
  const parsed = names.map((name) => ({ name, ...parse(name) }));
  const listings = new Map<string, Promise<PartKey[]>>();
  for (const { p, shard } of parsed) {
    const id = `${p.day}/${shard}`;
    if (!listings.has(id)) listings.set(id, finder.parts(p.day, shard));
  }
  const parts = new Map<string, PartKey[]>();
  await Promise.all([...listings].map(async ([id, l]) => parts.set(id, await l)));
  const todo = parsed.map(({ name, p, shard }) => ({
    name,
    cands: candidateParts(parts.get(`${p.day}/${shard}`)!, p.nodeId, p.f).map((c) => c.key),
    at: 0,
  }));
  let pending = todo;
  while (pending.length > 0) {
    const byPart = new Map<string, typeof todo>();
    const leftover: typeof todo = [];
    for (const t of pending) {
      const key = t.cands[t.at];
      if (key === undefined) {
        leftover.push(t);
        continue;
      }
      let l = byPart.get(key);
      if (!l) byPart.set(key, (l = []));
      l.push(t);
    }
    const again: typeof todo = [];
    await Promise.all(
      [...byPart].map(([key, list]) =>
        finder.withReader(key, async (r) => {
          const got = await r.getMany(
            list.map((t) => t.name),
            { missing: "skip" },
          );
          for (const t of list) {
            const b = got.get(t.name);
            if (b) out.set(t.name, b);
            else {
              t.at++;
              again.push(t);
            }
          }
        }),
      ),
    );
    for (const t of leftover) out.set(t.name, await getOne(t.name));
    pending = again;
  }
}

/**
 * Names still in the open journals, read with coalesced reads per journal
 * into `out`; returns the other names (for the sealed parts).
 */
export function readManyJournaled(
  names: Iterable<string>,
  local: ReadonlyMap<string, { readonly journal: Journal; readonly rec: JournalRecord }>,
  out: Map<string, Uint8Array>,
): string[] {
  const byJournal = new Map<Journal, { offset: number; length: number; item: string }[]>();
  const rest: string[] = [];
  for (const name of new Set(names)) {
    const loc = local.get(name);
    if (!loc) {
      rest.push(name);
      continue;
    }
    let l = byJournal.get(loc.journal);
    if (!l) byJournal.set(loc.journal, (l = []));
    l.push({ offset: loc.rec.dataOffset, length: loc.rec.dataLength, item: name });
  }
  for (const [j, wants] of byJournal) {
    for (const g of coalesceRanges(wants, 64 << 10, 8 << 20)) {
      const bytes = j.read(g.offset, g.length);
      for (const w of g.wants) out.set(w.item, sliceWant(g, bytes, w));
    }
  }
  return rest;
}
