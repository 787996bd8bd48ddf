import type { DesReader, EntryStat } from "../index.js";

/**
 * Live entries in batches, as the index holds them (`DesReader.entries`):
 * v2 page by page (name order within a page; pages in hash order), v1 in
 * first-added order. Only one round of pages is held at a time, so the first
 * batch comes early and memory stays flat whatever the archive's size.
 */
export async function* recordBatches(
  reader: DesReader,
  opts: { signal?: AbortSignal; size?: number } = {},
): AsyncGenerator<EntryStat[]> {
  const size = opts.size ?? 1024;
  let batch: EntryStat[] = [];
  for await (const e of reader.entries(opts.signal ? { signal: opts.signal } : {})) {
    batch.push(e);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Index pages of a v2 archive, from its footer's page_bits (0 for v1, whose index is one block). */
export async function pageCount(reader: DesReader): Promise<number> {
  if (reader.formatVersion === 1) return 0;
  const footer = await reader.source.read(reader.size - 128, 128);
  return 2 ** footer[9]!;
}
