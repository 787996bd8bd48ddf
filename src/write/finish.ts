import { ByteWriter } from "../format/bytes.js";
import { FLAG_EXTERNAL, HEADER_SIZE } from "../format/constants.js";
import { encodeV1Footer, encodeV1Record } from "../format/v1/layout.js";
import { encodeV2Footer } from "../format/v2/footer.js";
import { planV2Index, v2FooterOf } from "../format/v2/index-builder.js";
import type { EntryTable } from "./entry-table.js";
import type { Output } from "./output.js";
import type { SpillBuffer } from "./spill.js";
import type { WriterStats } from "./options.js";

/** What `finishArchive` wrote, for the writer's stats. */
export interface Finished {
  readonly dataLength: number;
  readonly metaLength: number;
  readonly indexLength: number;
  readonly indexPages: number;
}

/**
 * Writes everything after DATA: META (replayed from the spill buffer), the
 * index (v1: records in the order added; v2: pages and root from the index
 * builder, straight from the table's columns) and the footer. Does not commit.
 */
export async function finishArchive(
  out: Output,
  format: 1 | 2,
  table: EntryTable,
  meta: SpillBuffer,
): Promise<Finished> {
  const dataLength = out.position - HEADER_SIZE;
  const metaStart = out.position;
  for await (const chunk of meta.read()) await out.write(chunk);
  const metaLength = out.position - metaStart;
  const indexStart = out.position;
  if (format === 1) {
    await writeV1Index(out, table, metaStart);
    const indexLength = out.position - indexStart;
    await out.write(
      encodeV1Footer({
        dataStart: HEADER_SIZE,
        dataLength,
        metaStart,
        metaLength,
        indexStart,
        indexLength,
        fileCount: table.count,
      }),
    );
    return { dataLength, metaLength, indexLength, indexPages: 0 };
  }
  const plan = planV2Index(table.records(metaStart), { ascending: table.inOrder, duplicates: "unique" });
  for (const chunk of plan.chunks()) await out.writeOwned(chunk);
  const indexLength = out.position - indexStart;
  await out.write(
    encodeV2Footer(v2FooterOf(plan, { dataStart: HEADER_SIZE, dataLength, metaStart, metaLength, indexStart })),
  );
  return { dataLength, metaLength, indexLength, indexPages: 2 ** plan.pageBits };
}

/** Section 2.4: one record per entry, in the order added, written about 1 MiB at a time. */
async function writeV1Index(out: Output, t: EntryTable, metaStart: number): Promise<void> {
  const w = new ByteWriter(1 << 16);
  for (let i = 0; i < t.count; i++) {
    const external = (t.flags[i]! & FLAG_EXTERNAL) !== 0;
    encodeV1Record(w, {
      name: t.name(i),
      dataOffset: external ? 0 : t.dataOffset[i]!,
      dataLength: t.size[i]!,
      metaOffset: metaStart + t.metaOffset[i]!,
      metaLength: t.metaLength[i]!,
      flags: t.flags[i]!,
    });
    if (w.length >= 1 << 20) {
      await out.write(w.finish());
      w.length = 0;
    }
  }
  if (w.length > 0) await out.write(w.finish());
}

/** The writer's report once the archive is committed. */
export function writerStats(
  out: Output,
  format: 1 | 2,
  table: EntryTable,
  done: Finished,
  originalBytes: number,
): WriterStats {
  let externalEntries = 0;
  for (let i = 0; i < table.count; i++) if (table.flags[i]! & FLAG_EXTERNAL) externalEntries++;
  return {
    location: out.location,
    formatVersion: format,
    entries: table.count,
    externalEntries,
    dataBytes: done.dataLength,
    originalBytes,
    metaBytes: done.metaLength,
    indexBytes: done.indexLength,
    indexPages: done.indexPages,
    archiveBytes: out.position,
  };
}
