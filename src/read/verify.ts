import { DesError, DesFormatError } from "../errors.js";
import { HEADER_MAGIC, startsWith } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import type { ReadHints } from "../io/source.js";
import { readMetaOf } from "./batch.js";
import { sliceWant } from "./coalesce.js";
import type { RangeWant } from "./coalesce.js";
import { loadMetaCodec } from "../format/meta.js";
import { checkReadable, decodeBody, decodeMeta, isExternal } from "./entry.js";
import { fetchExternal, resolveExternalKey } from "./external.js";
import type { ExternalConfig } from "./external.js";
import type { Opening } from "./opening.js";
import { entryChunks } from "./stream.js";

export interface VerifyProblem {
  readonly name?: string;
  readonly page?: number;
  readonly code: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly formatVersion: 1 | 2;
  /** Records examined (v1 duplicates and v2 tombstones included). */
  readonly entries: number;
  /** Entries whose data was checked against a checksum (v2) or fully read (v1). */
  readonly dataChecked: number;
  readonly metaChecked: number;
  readonly pages: number;
  /** External entries not checked because no external store was configured. */
  readonly externalSkipped: number;
  readonly problems: readonly VerifyProblem[];
}

export interface VerifyConfig {
  readonly maxEntryBytes: number;
  readonly external: ExternalConfig;
}

const BULK: Partial<ReadHints> = { maxGap: 1 << 20, maxSpan: 8 << 20 };

/**
 * Records whose stored data range overlaps an earlier record's. The writer
 * never produces them; a hostile archive uses them to make a small archive
 * inflate to terabytes when every record is checked. Each is reported once
 * and its data is not decoded again, so verify costs at most one pass over
 * the archive's bytes.
 */
function overlapping(recs: readonly EntryRecord[]): Map<EntryRecord, EntryRecord> {
  const internal = recs
    .filter((r) => !isExternal(r) && r.storedSize > 0)
    .sort((a, b) => a.dataOffset - b.dataOffset || b.storedSize - a.storedSize);
  const out = new Map<EntryRecord, EntryRecord>();
  let reach: EntryRecord | undefined;
  for (const r of internal) {
    if (reach && r.dataOffset < reach.dataOffset + reach.storedSize) out.set(r, reach);
    else reach = r;
    if (reach && r.dataOffset + r.storedSize > reach.dataOffset + reach.storedSize) reach = r;
  }
  return out;
}

/**
 * Reads everything of one opening and checks every checksum: footer, root,
 * pages, and the data and meta of every entry (v2); for v1, the structure,
 * every meta's JSON and every data range. Returns a report rather than throwing.
 */
export async function verifyOpening(o: Opening, cfg: VerifyConfig, signal?: AbortSignal): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const report = (name: string | undefined, page: number | undefined, e: unknown): void => {
    const err = e instanceof Error ? e : new Error(String(e));
    problems.push({
      ...(name !== undefined ? { name } : {}),
      ...(page !== undefined ? { page } : {}),
      code: err instanceof DesError ? err.code : "DES_IO",
      message: err.message,
    });
  };
  const version = o.index.version;
  const head = await o.fetcher.read(0, Math.min(16, o.size), signal);
  if (!startsWith(head, 0, HEADER_MAGIC) || head[8] !== version) {
    report(undefined, undefined, new DesFormatError("header magic or version does not match the footer"));
  }
  const recs: EntryRecord[] = [];
  for await (const r of o.index.allRecords(signal, (page, e) => report(undefined, page, e))) recs.push(r);
  const badPages = problems.some((p) => p.page !== undefined);
  if (!badPages && version === 2 && recs.length !== o.index.entryCount) {
    report(
      undefined,
      undefined,
      new DesFormatError(`the footer counts ${o.index.entryCount} records, the pages hold ${recs.length}`),
    );
  }
  // v1: a name written twice is served from its last record; what an earlier one names is not what a read serves.
  const live = new Map<string, EntryRecord>();
  if (version === 1) for (const r of recs) live.set(r.name, r);
  const overlaps = overlapping(recs);
  let dataChecked = 0;
  let metaChecked = 0;
  let externalSkipped = 0;
  const dataWants: RangeWant<EntryRecord>[] = [];
  const metaWants: RangeWant<EntryRecord>[] = [];
  const refused = new Set<EntryRecord>();
  // Entries too big to hold in memory are checked by streaming them instead.
  const streamed: EntryRecord[] = [];
  for (const r of recs) {
    try {
      checkReadable(r); // what get() refuses, verify() reports
    } catch (e) {
      report(r.name, undefined, e);
      refused.add(r);
      continue;
    }
    if (r.metaLength > 0) metaWants.push({ offset: r.metaOffset, length: r.metaLength, item: r });
    const over = overlaps.get(r);
    if (over) {
      report(
        r.name,
        undefined,
        new DesFormatError(
          `entry ${JSON.stringify(r.name)}: its data overlaps the data of ${JSON.stringify(over.name)}`,
        ),
      );
      continue;
    }
    if (r.size > cfg.maxEntryBytes || r.storedSize > cfg.maxEntryBytes) streamed.push(r);
    else if (r.storedSize > 0 && !isExternal(r))
      dataWants.push({ offset: r.dataOffset, length: r.storedSize, item: r });
  }
  await o.fetcher.readGroups(dataWants, signal, BULK, (group, bytes) => {
    for (const w of group.wants) {
      try {
        decodeBody(w.item, sliceWant(group, bytes, w), true);
        dataChecked++;
      } catch (e) {
        report(w.item.name, undefined, e);
      }
    }
  });
  if (metaWants.length > 0) await loadMetaCodec();
  await o.fetcher.readGroups(metaWants, signal, BULK, (group, bytes) => {
    for (const w of group.wants) {
      try {
        decodeMeta(version, w.item, sliceWant(group, bytes, w), true);
        metaChecked++;
      } catch (e) {
        report(w.item.name, undefined, e);
      }
    }
  });
  const big = new Set(streamed);
  const keyOf = (r: EntryRecord): Promise<string> =>
    resolveExternalKey(r, cfg.external, () => readMetaOf(o, r, true, signal));
  for (const r of recs) {
    if (!isExternal(r) || refused.has(r)) continue; // refused ones are reported once, above
    if (!cfg.external.store) {
      externalSkipped++;
      continue;
    }
    if (big.has(r)) continue;
    try {
      const key = await keyOf(r);
      const winner = live.get(r.name);
      // A superseded v1 record whose key is the live record's: the object now holds the newer body.
      if (winner && winner !== r && isExternal(winner) && (await keyOf(winner)) === key) continue;
      await fetchExternal(r, key, cfg.external, true, signal);
      dataChecked++;
    } catch (e) {
      report(r.name, undefined, e);
    }
  }
  for (const r of streamed) {
    if (isExternal(r) && !cfg.external.store) continue; // counted as skipped above
    try {
      if (isExternal(r)) {
        const winner = live.get(r.name);
        if (winner && winner !== r && isExternal(winner) && (await keyOf(winner)) === (await keyOf(r))) continue;
      }
      for await (const chunk of entryChunks(o, r, cfg.external, true, signal)) void chunk;
      dataChecked++;
    } catch (e) {
      report(r.name, undefined, e);
    }
  }
  return {
    ok: problems.length === 0,
    formatVersion: version,
    entries: recs.length,
    dataChecked,
    metaChecked,
    pages: o.index.pageCount,
    externalSkipped,
    problems,
  };
}
