import { DesInvalidArgumentError, DesNotFoundError } from "../errors.js";
import { loadMetaCodec, metaCodecReady } from "../format/meta.js";
import type { MetaValue } from "../format/meta.js";
import type { EntryRecord } from "../format/record.js";
import { Slab, sliceWant } from "./coalesce.js";
import type { RangeWant } from "./coalesce.js";
import { checkFlags, checkReadable, decodeBody, decodeMeta, isExternal } from "./entry.js";
import { fetchExternal, resolveExternalKey } from "./external.js";
import type { ExternalConfig } from "./external.js";
import type { BatchHints } from "./fetcher.js";
import type { Opening } from "./opening.js";
import type { ContentCache } from "./content-cache.js";

/** What a batch needs to know of its reader. */
export interface BatchConfig {
  readonly maxEntryBytes: number;
  readonly external: ExternalConfig;
  readonly content?: ContentCache | undefined;
}

export interface BatchPlan {
  readonly verify: boolean;
  /** v1 meta objects as Maps (ReadOptions.maps). */
  readonly maps?: boolean;
  readonly hints: BatchHints;
  readonly budget: number;
  readonly signal: AbortSignal | undefined;
  /** Awaited between waves (iterMany: until the consumer has taken what was delivered). */
  readonly drained?: () => Promise<void>;
}

/** The records of `names` in opening `o`; a missing name throws or is skipped. */
export async function lookup(
  o: Opening,
  names: readonly string[],
  missing: "throw" | "skip",
  signal?: AbortSignal,
  hints?: BatchHints,
): Promise<EntryRecord[]> {
  const found = await o.index.lookupMany(names, signal, hints);
  const out: EntryRecord[] = [];
  for (let i = 0; i < found.length; i++) {
    const rec = found[i];
    if (rec) out.push(rec);
    else if (missing === "throw") throw new DesNotFoundError(names[i]!);
  }
  return out;
}

/** What must hold before an entry's body is read into memory. */
export function checkInMemory(rec: EntryRecord, maxEntryBytes: number): void {
  checkReadable(rec);
  if (rec.size > maxEntryBytes) {
    throw new DesInvalidArgumentError(
      `entry ${JSON.stringify(rec.name)} is ${rec.size} bytes, above maxEntryBytes (${maxEntryBytes}): read it with stream()`,
    );
  }
}

/** The meta of one record, read from its opening. */
export async function readMetaOf(
  o: Opening,
  rec: EntryRecord,
  verify: boolean,
  signal?: AbortSignal,
): Promise<MetaValue | undefined> {
  if (rec.metaLength === 0) return undefined;
  const read = o.fetcher.read(rec.metaOffset, rec.metaLength, signal);
  // The first meta read of a process loads the codecs while its bytes are read.
  const bytes = metaCodecReady() ? await read : (await Promise.all([read, loadMetaCodec()]))[0];
  return decodeMeta(o.index.version, rec, bytes, verify);
}

/** Splits records into waves of at most `budget` decoded bytes (an entry above it is a wave alone). */
export function waves(recs: readonly EntryRecord[], budget: number): EntryRecord[][] {
  const out: EntryRecord[][] = [];
  let wave: EntryRecord[] = [];
  let bytes = 0;
  for (const r of recs) {
    if (wave.length > 0 && bytes + r.size > budget) {
      out.push(wave);
      wave = [];
      bytes = 0;
    }
    wave.push(r);
    bytes += r.size;
  }
  if (wave.length > 0) out.push(wave);
  return out;
}

/** Sum of the sizes the index states. */
export function declaredBytes(recs: readonly EntryRecord[]): number {
  let n = 0;
  for (const r of recs) n += r.size;
  return n;
}

/**
 * Reads the bodies of `recs`, all from opening `o`, with coalesced reads, in
 * waves of at most `plan.budget` decoded bytes, and hands each to `deliver`
 * as it arrives: the one implementation behind `getMany` and `iterMany`.
 */
export async function readBodies(
  o: Opening,
  recs: readonly EntryRecord[],
  cfg: BatchConfig,
  plan: BatchPlan,
  deliver: (name: string, bytes: Uint8Array) => void,
): Promise<void> {
  for (const r of recs) checkInMemory(r, cfg.maxEntryBytes);
  // In offset order, so each wave holds neighbours that coalesce.
  const ordered = [...recs].sort((a, b) => a.dataOffset - b.dataOffset);
  const all = waves(ordered, plan.budget);
  for (let k = 0; k < all.length; k++) {
    if (k > 0) await plan.drained?.();
    const wants: RangeWant<EntryRecord>[] = [];
    const external: EntryRecord[] = [];
    for (const r of all[k]!) {
      const cached = cfg.content?.get(o, r);
      if (cached) deliver(r.name, cached);
      else if (isExternal(r)) external.push(r);
      else if (r.storedSize === 0) deliver(r.name, new Uint8Array(0));
      else wants.push({ offset: r.dataOffset, length: r.storedSize, item: r });
    }
    // A cached body is counted at its own length: it gets a buffer of its own.
    const slab = cfg.content ? undefined : new Slab();
    await o.fetcher.readGroups(wants, plan.signal, plan.hints, (group, bytes) => {
      for (const w of group.wants) {
        const body = decodeBody(w.item, sliceWant(group, bytes, w, slab), plan.verify);
        if (plan.verify) cfg.content?.set(o, w.item, body);
        deliver(w.item.name, body);
      }
    });
    for (const r of external) {
      const key = await resolveExternalKey(r, cfg.external, () => readMetaOf(o, r, true, plan.signal));
      deliver(r.name, await fetchExternal(r, key, cfg.external, plan.verify, plan.signal));
    }
  }
}

/** Meta of many records of one opening, coalesced like bodies; keys in the order of `recs`. */
export async function readMetas(
  o: Opening,
  recs: readonly EntryRecord[],
  plan: BatchPlan,
): Promise<Map<string, MetaValue | undefined>> {
  // An unknown flag may change what the meta means too: refused like the body.
  for (const r of recs) checkFlags(r);
  const got = new Map<string, MetaValue | undefined>();
  const wants: RangeWant<EntryRecord>[] = [];
  for (const r of recs) {
    if (r.metaLength === 0) got.set(r.name, undefined);
    else wants.push({ offset: r.metaOffset, length: r.metaLength, item: r });
  }
  if (wants.length > 0 && !metaCodecReady()) await loadMetaCodec();
  await o.fetcher.readGroups(wants, plan.signal, plan.hints, (group, bytes) => {
    for (const w of group.wants)
      got.set(
        w.item.name,
        decodeMeta(o.index.version, w.item, sliceWant(group, bytes, w), plan.verify, plan.maps === true),
      );
  });
  const ordered = new Map<string, MetaValue | undefined>();
  for (const r of recs) ordered.set(r.name, got.get(r.name));
  return ordered;
}
