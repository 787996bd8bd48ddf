/**
 * `merge`: folds several archives (daily parts, say) into one new
 * single-generation archive, copying stored bytes as `repack` does.
 */
import { DesDuplicateError, DesInvalidArgumentError } from "../errors.js";
import type { EntryRecord } from "../format/record.js";
import type { ByteSink } from "../io/sink.js";
import type { RangeSource } from "../io/source.js";
import { liveRecordBatches } from "../read/generations.js";
import type { OpenedGeneration } from "../read/generations.js";
import { copyEntries, createCopyTarget, finishCopy, openForCopy, repackEntry } from "./repack.js";
import type { RepackOptions, RepackReport } from "./repack.js";

export interface MergeOptions extends Omit<RepackOptions, "format"> {
  /**
   * A name live in more than one source: "error" (default; DesDuplicateError
   * before anything is written), "first" (the earliest source in the list
   * wins) or "last" (the latest wins, like applying the parts in order).
   */
  onDuplicate?: "error" | "first" | "last";
}

export async function merge(
  sources: readonly (string | RangeSource)[],
  target: string | ByteSink,
  opts: MergeOptions = {},
): Promise<RepackReport> {
  if (!Array.isArray(sources) || sources.length === 0)
    throw new DesInvalidArgumentError("merge needs at least one source");
  const rule = opts.onDuplicate ?? "error";
  if (rule !== "error" && rule !== "first" && rule !== "last")
    throw new DesInvalidArgumentError(`onDuplicate must be "error", "first" or "last"`);
  const opened: { opened: OpenedGeneration; close: () => Promise<void> }[] = [];
  try {
    for (const s of sources) opened.push(await openForCopy(s, opts.signal));
    // Plan first: which source each name comes from. Nothing is written before this settles.
    const winner = new Map<string, { source: number; rec: EntryRecord }>();
    let dropped = 0;
    for (let k = 0; k < opened.length; k++) {
      for await (const batch of liveRecordBatches(opened[k]!.opened.index, opts.signal, opened[k]!.opened))
        for (const r of batch) {
          if (opts.filter && !opts.filter(repackEntry(r))) {
            dropped++;
            continue;
          }
          const seen = winner.get(r.name);
          if (seen) {
            if (rule === "error") throw new DesDuplicateError(r.name);
            dropped++;
            if (rule === "first") continue;
          }
          winner.set(r.name, { source: k, rec: r });
        }
    }
    const perSource: EntryRecord[][] = opened.map(() => []);
    for (const { source, rec } of winner.values()) perSource[source]!.push(rec);
    const t = await createCopyTarget(target, opts.overwrite ?? false);
    let bytesWritten: number;
    try {
      for (let k = 0; k < opened.length; k++) await copyEntries(t, opened[k]!.opened, perSource[k]!, opts);
      bytesWritten = await finishCopy(t);
    } catch (e) {
      t.gen.dispose();
      await t.sink.abort();
      throw e;
    }
    const sourceBytes = opened.reduce((n, o) => n + o.opened.size, 0);
    return {
      location: t.sink.location,
      added: winner.size,
      deleted: dropped,
      bytesWritten,
      sourceBytes,
      reclaimableBytes: 0,
    };
  } finally {
    for (const o of opened) await o.close();
  }
}
