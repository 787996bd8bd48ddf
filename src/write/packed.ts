import type { DesWriter } from "./writer.js";

/**
 * packDirectory's fast path (not part of the package's API): adds entries
 * whose bodies lie back to back in `bytes`, `lengths[k]` bytes each, as one
 * `add` per entry would. `release` (called exactly once) says when `bytes`
 * may be reused; until then the sink may still be writing it. With
 * `encodedMetas`, `metas` are v2 meta bytes already (a v2 writer only).
 */
export function addPacked(
  w: DesWriter,
  names: readonly string[],
  bytes: Uint8Array,
  lengths: ArrayLike<number>,
  release?: () => void,
  metas?: readonly unknown[],
  encodedMetas = false,
): Promise<void> {
  return w["enqueue"](() => w["addPackedNow"](names, bytes, lengths, release, metas, encodedMetas));
}

/** True when `addPacked` can take bodies up to `maxLength` bytes at once (else add them one by one). */
export function canAddPacked(w: DesWriter, maxLength: number): boolean {
  return w["packable"](w["opts"].compress, maxLength);
}
