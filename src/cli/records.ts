import { DesReader } from "../index.js";
import type { ArchiveIndex } from "../read/archive-index.js";
import type { EntryRecord } from "../format/record.js";
import { FLAG_TOMBSTONE } from "../format/constants.js";

/** The reader's index (for page-by-page iteration, which the public API does not offer yet). */
function indexOf(reader: DesReader): ArchiveIndex {
  return (reader as unknown as { state: { index: ArchiveIndex } }).state.index;
}

/**
 * Live records in batches, as the index holds them: v2 page by page (name
 * order within a page; pages in hash order), v1 in first-added order. The
 * first batch comes after one page read, whatever the archive's size, and
 * only one batch of records is held at a time.
 */
export async function* recordBatches(reader: DesReader, opts: { signal?: AbortSignal; pageAtATime?: boolean } = {}): AsyncGenerator<EntryRecord[]> {
  const signal = opts.signal;
  const index = indexOf(reader);
  if (index.version === 1) {
    const names = await index.list(signal);
    for (let i = 0; i < names.length; i += 4096) {
      const recs = await index.lookupMany(names.slice(i, i + 4096), signal);
      yield recs.filter((r): r is EntryRecord => r !== undefined);
    }
    return;
  }
  let batch: EntryRecord[] = [];
  // One page per read (local files: the first names come after one small read), or
  // pages in coalesced groups (remote: one request for many pages).
  const records = opts.pageAtATime
    ? index.allRecords(signal, (_page, e) => {
        throw e;
      })
    : index.allRecords(signal);
  for await (const r of records) {
    if (r.flags & FLAG_TOMBSTONE) continue;
    batch.push(r);
    if (batch.length >= (opts.pageAtATime ? 512 : 4096)) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

export function pageCount(reader: DesReader): number {
  return indexOf(reader).pageCount;
}

export function dataRegion(reader: DesReader): { start: number; length: number } {
  return indexOf(reader).dataRegion;
}
