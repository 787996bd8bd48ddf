import { DesInvalidArgumentError } from "../errors.js";

/**
 * Keys of the daily store, relative to its base:
 *
 *   YYYY-MM-DD/<B>.des                          one part per day and shard (the Python store; compaction output)
 *   YYYY-MM-DD/<B>.n<NN>-<FIRST>-<LAST>.des     a part sealed by node NN holding names with FIRST <= F <= LAST
 *
 * `<B>` is the shard in lower-case hex of ceil(bits/4) digits ("hex", the
 * Python store) or `shard_<decimal, at least 2 digits>` ("packer", the
 * Python packer). NN is the node id in 2 lower-case hex digits, FIRST and
 * LAST the Snowflake F of the part's first and last name in 12 upper-case hex
 * digits (as in the names). Every key of one day and shard starts with
 * `YYYY-MM-DD/<B>.`, so one listing finds them all.
 */
export type ShardLayout = "hex" | "packer";

export interface PartKey {
  readonly key: string;
  readonly day: string;
  readonly shard: number;
  /** Undefined for a day-and-shard part (`<B>.des`), which may hold any node's names. */
  readonly nodeId: number | undefined;
  readonly firstF: number;
  readonly lastF: number;
}

const NODE_PART = /^n([0-9a-f]{2})-([0-9A-F]{12})-([0-9A-F]{12})$/;

export function shardBase(shard: number, bits: number, layout: ShardLayout): string {
  if (layout === "packer") return `shard_${String(shard).padStart(2, "0")}`;
  return shard.toString(16).padStart(Math.ceil(bits / 4), "0");
}

/** `YYYY-MM-DD/<B>.` : the listing prefix of one day and shard. */
export function shardPrefix(day: string, shard: number, bits: number, layout: ShardLayout): string {
  return `${day}/${shardBase(shard, bits, layout)}.`;
}

export function singlePartKey(day: string, shard: number, bits: number, layout: ShardLayout): string {
  return `${shardPrefix(day, shard, bits, layout)}des`;
}

function hex12(f: number): string {
  return f.toString(16).toUpperCase().padStart(12, "0");
}

export function nodePartKey(
  day: string,
  shard: number,
  bits: number,
  layout: ShardLayout,
  nodeId: number,
  firstF: number,
  lastF: number,
): string {
  if (lastF < firstF) throw new DesInvalidArgumentError("a part's last F precedes its first");
  return `${shardPrefix(day, shard, bits, layout)}n${nodeId.toString(16).padStart(2, "0")}-${hex12(firstF)}-${hex12(lastF)}.des`;
}

/** Parses a key listed under `shardPrefix(day, shard, ...)`; anything else (temporary files, foreign keys) gives undefined. */
export function parsePartKey(
  key: string,
  day: string,
  shard: number,
  bits: number,
  layout: ShardLayout,
): PartKey | undefined {
  const prefix = shardPrefix(day, shard, bits, layout);
  if (!key.startsWith(prefix) || !key.endsWith(".des")) return undefined;
  const middle = key.slice(prefix.length, -4);
  if (middle === "") return { key, day, shard, nodeId: undefined, firstF: 0, lastF: 2 ** 48 - 1 };
  const m = NODE_PART.exec(middle);
  if (!m) return undefined;
  const firstF = parseInt(m[2]!, 16);
  const lastF = parseInt(m[3]!, 16);
  if (lastF < firstF) return undefined;
  return { key, day, shard, nodeId: parseInt(m[1]!, 16), firstF, lastF };
}

/** The parts that may hold a name with this node and F, most specific first. */
export function candidateParts(parts: readonly PartKey[], nodeId: number, f: number): PartKey[] {
  const own = parts.filter((p) => p.nodeId === nodeId && p.firstF <= f && f <= p.lastF);
  const shared = parts.filter((p) => p.nodeId === undefined);
  return [...own, ...shared];
}

/** Parses any key of a day (`YYYY-MM-DD/...`), whatever its shard. */
export function parseDayKey(key: string, day: string, bits: number, layout: ShardLayout): PartKey | undefined {
  if (!key.startsWith(`${day}/`)) return undefined;
  const rest = key.slice(day.length + 1);
  const dot = rest.indexOf(".");
  if (dot <= 0) return undefined;
  const base = rest.slice(0, dot);
  let shard: number;
  if (layout === "packer") {
    const m = /^shard_([0-9]{2,10})$/.exec(base);
    if (!m) return undefined;
    shard = Number(m[1]);
  } else {
    if (base.length !== Math.ceil(bits / 4) || !/^[0-9a-f]+$/.test(base)) return undefined;
    shard = parseInt(base, 16);
  }
  if (shard >= 2 ** bits) return undefined;
  return parsePartKey(key, day, shard, bits, layout);
}
