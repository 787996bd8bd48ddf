import { addPackedRows } from "./packed-add.js";
import type { WriterCore } from "./packed-add.js";
import type { DesWriter } from "./writer.js";

/**
 * packDirectory's fast path (not part of the package's API): adds entries
 * whose bodies lie back to back in `bytes`, `lengths[k]` bytes each, as one
 * `add` per entry would. `release` (called exactly once) says when `bytes`
 * may be reused; until then the sink may still be writing it.
 */
export function addPacked(
  w: DesWriter,
  ...args: Parameters<typeof addPackedRows> extends [WriterCore, ...infer Rest] ? Rest : never
): Promise<void> {
  return w["enqueue"](() => addPackedRows(w["core"], ...args));
}

/** True when `addPacked` can take bodies up to `maxLength` bytes at once (else add them one by one). */
export function canAddPacked(w: DesWriter, maxLength: number): boolean {
  return w["packable"](w["opts"].compress, maxLength);
}
