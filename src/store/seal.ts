import { decodeMetaV2 } from "../format/meta.js";
import { parseName } from "../naming/name.js";
import { shardFromName } from "../naming/shard.js";
import type { DesWriter } from "../write/writer.js";
import type { JournalRecord } from "./journal.js";
import { nodePartKey, parsePartKey } from "./layout.js";
import type { PartKey, ShardLayout } from "./layout.js";
import type { PartBackend } from "./parts.js";

export interface SealLayout {
  readonly nodeId: number;
  readonly bits: number;
  readonly layout: ShardLayout;
}

interface Group {
  day: string;
  shard: number;
  firstF: number;
  lastF: number;
  records: JournalRecord[];
}

/** Groups a journal's records by day and shard, in journal order; a name seen twice keeps its last record. */
export function groupRecords(records: readonly JournalRecord[], bits: number): Group[] {
  const last = new Map<string, JournalRecord>();
  for (const r of records) last.set(r.name, r);
  const groups = new Map<string, Group>();
  for (const r of records) {
    if (last.get(r.name) !== r) continue;
    const p = parseName(r.name);
    const shard = shardFromName(r.name, bits);
    const id = `${p.day}/${shard}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { day: p.day, shard, firstF: p.f, lastF: p.f, records: [] }));
    g.records.push(r);
    if (p.f < g.firstF) g.firstF = p.f;
    if (p.f > g.lastF) g.lastF = p.f;
  }
  return [...groups.values()];
}

/** Adds a group's records to a part, runs of meta-less bodies through addMany. */
async function fill(w: DesWriter, bytes: Buffer, records: readonly JournalRecord[]): Promise<void> {
  let run: [string, Uint8Array][] = [];
  const flush = async (): Promise<void> => {
    if (run.length > 0) await w.addMany(run);
    run = [];
  };
  for (const r of records) {
    const data = bytes.subarray(r.dataOffset, r.dataOffset + r.dataLength);
    if (r.metaLength === 0) {
      run.push([r.name, data]);
      if (run.length >= 4096) await flush();
      continue;
    }
    await flush();
    const meta = decodeMetaV2(bytes.subarray(r.metaOffset, r.metaOffset + r.metaLength), r.name);
    await w.add(r.name, data, { meta });
  }
  await flush();
}

/**
 * Writes one DES v2 part per day and shard of a journal. Part keys depend
 * only on the journal's content, so sealing the same journal again after a
 * crash finds the parts already written and leaves them as they are.
 */
export async function sealRecords(
  bytes: Buffer,
  records: readonly JournalRecord[],
  lay: SealLayout,
  backend: PartBackend,
): Promise<PartKey[]> {
  const out: PartKey[] = [];
  for (const g of groupRecords(records, lay.bits)) {
    const key = nodePartKey(g.day, g.shard, lay.bits, lay.layout, lay.nodeId, g.firstF, g.lastF);
    await backend.create(key, (w) => fill(w, bytes, g.records));
    out.push(parsePartKey(key, g.day, g.shard, lay.bits, lay.layout)!);
  }
  await backend.settle();
  return out;
}
