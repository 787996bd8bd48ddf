import path from "node:path";
import { DesInvalidArgumentError } from "../errors.js";
import type { Location } from "../io/location.js";
import { FolderLocation } from "../locations/folder.js";
import { checkByte, checkDay } from "../naming/name.js";
import type { ShardLayout } from "./layout.js";
import { FolderParts, LocationParts } from "./parts.js";
import type { PartBackend } from "./parts.js";

/** What `DailyShardedDesStore.open` needs from its options, checked (every refusal a DesInvalidArgumentError). */
export interface ResolvedOptions {
  readonly nodeId: number;
  readonly bits: number;
  readonly wrapBits: number;
  readonly layout: ShardLayout;
  readonly limits: { maxBytes: number; maxEntries: number; maxAgeMs: number; maxQueuedBytes: number };
  readonly backend: PartBackend;
  readonly spool: string;
}

export interface StoreOptionsInput {
  readonly location: string | Location;
  readonly nodeId: number;
  readonly shardBits?: number;
  readonly wrapBits?: number;
  readonly layout?: ShardLayout;
  readonly spoolDir?: string;
  readonly maxBytes?: number;
  readonly maxEntries?: number;
  readonly maxAgeMs?: number;
  readonly maxQueuedBytes?: number;
}

function positiveInt(what: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < 1)
    throw new DesInvalidArgumentError(`${what} must be a positive integer, not ${String(v)}`);
  return x;
}

export function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

export function resolveOptions(opts: StoreOptionsInput): ResolvedOptions {
  if (typeof opts !== "object" || opts === null)
    throw new DesInvalidArgumentError("DailyShardedDesStore.open needs options");
  const nodeId = checkByte("nodeId", opts.nodeId);
  const bits = opts.shardBits ?? 8;
  if (!Number.isInteger(bits) || bits < 1 || bits > 32)
    throw new DesInvalidArgumentError(`shardBits must be an integer 1..32, not ${String(bits)}`);
  const wrapBits = opts.wrapBits ?? 32;
  if (!Number.isInteger(wrapBits) || wrapBits < 27 || wrapBits > 32) {
    throw new DesInvalidArgumentError(
      `the store needs wrapBits 27..32 (fewer repeat names within a day), not ${String(wrapBits)}`,
    );
  }
  const layout = opts.layout ?? "hex";
  if (layout !== "hex" && layout !== "packer")
    throw new DesInvalidArgumentError(`layout must be "hex" or "packer", not ${JSON.stringify(layout)}`);
  if (layout === "packer" && bits > 8)
    throw new DesInvalidArgumentError("the packer layout (shard_NN) takes at most 8 shard bits");
  const limits = {
    maxBytes: positiveInt("maxBytes", opts.maxBytes, 64 << 20),
    maxEntries: positiveInt("maxEntries", opts.maxEntries, 250_000),
    maxAgeMs: positiveInt("maxAgeMs", opts.maxAgeMs, 60_000),
    maxQueuedBytes: positiveInt("maxQueuedBytes", opts.maxQueuedBytes, 32 << 20),
  };
  let backend: PartBackend;
  let spool: string;
  const folder =
    typeof opts.location === "string"
      ? opts.location
      : opts.location instanceof FolderLocation
        ? opts.location.root
        : undefined;
  if (folder !== undefined) {
    backend = new FolderParts(folder);
    spool = path.resolve(opts.spoolDir ?? path.join(folder, "_spool"));
  } else {
    if (opts.spoolDir === undefined) throw new DesInvalidArgumentError("a store on a Location needs a local spoolDir");
    spool = path.resolve(opts.spoolDir);
    backend = new LocationParts(opts.location as Location, path.join(spool, `n${hex2(nodeId)}`, "sealed"));
  }
  return { nodeId, bits, wrapBits, layout, limits, backend, spool };
}

/** A put's `day`, checked before the put waits for room: a Date, or a real calendar day as YYYY-MM-DD. */
export function checkPutDay(day: unknown): Date | string {
  if (day instanceof Date) {
    if (Number.isNaN(day.getTime())) throw new DesInvalidArgumentError("day is an invalid Date");
    return day;
  }
  return checkDay(day);
}
