/** Bodies of an `addMany` laid back to back: one sink write for the group. */
export interface PackedGroup {
  readonly names: string[];
  readonly bytes: Uint8Array;
  readonly lengths: Float64Array;
}

/** Memory a caller lends to packGroups; it may be replaced by a bigger buffer, which the caller keeps. */
export interface GroupScratch {
  buf: Uint8Array;
}

/**
 * Splits `list` into groups whose bodies together stay within `groupBytes`
 * (a body bigger than that is a group of its own, not copied); each group's
 * bodies are copied into one buffer in order: the scratch buffer when one is
 * given (a group's bytes are then valid only until the next group is asked
 * for), else a new one per group.
 */
export function* packGroups(
  list: readonly (readonly [string, Uint8Array])[],
  groupBytes: number,
  scratch?: GroupScratch,
): Generator<PackedGroup> {
  for (let i = 0; i < list.length;) {
    let j = i;
    let total = 0;
    while (j < list.length && (j === i || total + list[j]![1].length <= groupBytes)) total += list[j++]![1].length;
    const names: string[] = [];
    const lengths = new Float64Array(j - i);
    let bytes: Uint8Array;
    if (j === i + 1) {
      names.push(list[i]![0]);
      lengths[0] = list[i]![1].length;
      bytes = list[i]![1];
    } else {
      if (!scratch) bytes = new Uint8Array(total);
      else {
        if (scratch.buf.length < total)
          scratch.buf = new Uint8Array(Math.min(groupBytes, Math.max(total, scratch.buf.length * 2)));
        bytes = scratch.buf.subarray(0, total);
      }
      let at = 0;
      for (let k = i; k < j; k++) {
        const [name, body] = list[k]!;
        names.push(name);
        lengths[k - i] = body.length;
        bytes.set(body, at);
        at += body.length;
      }
    }
    yield { names, bytes, lengths };
    i = j;
  }
}
