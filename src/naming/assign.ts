import { DesInvalidArgumentError } from "../errors.js";

/**
 * Which node owns which shard.
 * - "rendezvous" (default): highest random weight. Every (shard, node) pair
 *   gets a pseudo-random score and the shard goes to the node with the highest
 *   one; adding a node moves only the shards the new node now wins, about
 *   1/(N+1) of them, and removing one moves only its own shards.
 * - "modulo": the Python rule `shard % nodes == i`; nearly every shard moves
 *   when the node count changes.
 */
export type AssignStrategy = "rendezvous" | "modulo";

export interface AssignOptions {
  readonly strategy?: AssignStrategy;
}

/** Node identities: a count N (nodes 0..N-1) or a list of stable ids. */
export type NodeSet = number | readonly (string | number)[];

const MAX_ASSIGN_BITS = 24;

function nodeKeys(nodes: NodeSet): string[] {
  if (typeof nodes === "number") {
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 65536)
      throw new DesInvalidArgumentError(`node count must be an integer 1..65536, not ${nodes}`);
    return Array.from({ length: nodes }, (_, i) => String(i));
  }
  if (!Array.isArray(nodes) || nodes.length === 0)
    throw new DesInvalidArgumentError("nodes must be a count or a non-empty list of ids");
  const keys = nodes.map((n) => String(n));
  if (new Set(keys).size !== keys.length) throw new DesInvalidArgumentError("node ids must be distinct");
  return keys;
}

/** FNV-1a over the UTF-16 units of a string, then a murmur3 finaliser. */
function seedOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h ^ key.length);
}

function fmix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function score(shard: number, seed: number): number {
  return fmix32(seed ^ fmix32(Math.imul(shard, 0x9e3779b1) + 0x7f4a7c15));
}

function rendezvousOwner(shard: number, seeds: readonly number[]): number {
  let best = 0;
  let bestScore = -1;
  for (let i = 0; i < seeds.length; i++) {
    const s = score(shard, seeds[i]!);
    if (s > bestScore) {
      bestScore = s;
      best = i;
    }
  }
  return best;
}

/** The index (into `nodes`) of the node owning `shard`. */
export function shardOwner(shard: number, nodes: NodeSet, opts: AssignOptions = {}): number {
  if (!Number.isInteger(shard) || shard < 0 || shard >= 2 ** 32)
    throw new DesInvalidArgumentError(`shard must be an integer 0..2^32-1, not ${shard}`);
  const keys = nodeKeys(nodes);
  const strategy = opts.strategy ?? "rendezvous";
  if (strategy === "modulo") return shard % keys.length;
  if (strategy !== "rendezvous") throw new DesInvalidArgumentError(`unknown strategy ${JSON.stringify(strategy)}`);
  return rendezvousOwner(shard, keys.map(seedOf));
}

/**
 * The owner of every shard of a `shardBits` (1..24) layout: element `s` is the
 * index into `nodes` of the node that owns shard `s`.
 */
export function assignShards(shardBits: number, nodes: NodeSet, opts: AssignOptions = {}): number[] {
  if (!Number.isInteger(shardBits) || shardBits < 1 || shardBits > MAX_ASSIGN_BITS) {
    throw new DesInvalidArgumentError(`shardBits must be an integer 1..${MAX_ASSIGN_BITS}, not ${shardBits}`);
  }
  const keys = nodeKeys(nodes);
  const strategy = opts.strategy ?? "rendezvous";
  const count = 2 ** shardBits;
  const out = new Array<number>(count);
  if (strategy === "modulo") {
    for (let s = 0; s < count; s++) out[s] = s % keys.length;
    return out;
  }
  if (strategy !== "rendezvous") throw new DesInvalidArgumentError(`unknown strategy ${JSON.stringify(strategy)}`);
  const seeds = keys.map(seedOf);
  for (let s = 0; s < count; s++) out[s] = rendezvousOwner(s, seeds);
  return out;
}
