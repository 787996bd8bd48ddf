import { FLAG_EXTERNAL } from "../format/constants.js";
import type { IndexRecordSource } from "../format/v2/index-builder.js";
import type { V2RecordInput } from "../format/v2/page.js";

const encoder = new TextEncoder();

/**
 * The top 32 bits of a name hash: the duplicate table's key, and (its top
 * page_bits, at most 24) the name's index page.
 */
export function hashKey(hash: bigint): number {
  return Number(hash >> 32n);
}

/**
 * The writer's record of every entry added so far, as columns in typed
 * arrays plus one arena for all names: 90 bytes of columns per entry, its
 * name's UTF-8 bytes, and 4-11 bytes of duplicate-check table; no JavaScript
 * object per entry. Arrays grow by 1.5x, so up to half of that again is
 * slack. This is the only memory a writer grows with entry count.
 */
export class EntryTable {
  count = 0;
  private cap: number;
  private arena = new Uint8Array(1 << 16);
  private arenaUsed = 0;
  nameStart: Float64Array;
  nameLen: Uint32Array;
  nameHash: BigUint64Array;
  /** The top 32 bits of nameHash (see hashKey): no bigint arithmetic per probe or page. */
  nameKey: Uint32Array;
  flags: Uint8Array;
  codec: Uint8Array;
  size: Float64Array;
  storedSize: Float64Array;
  dataOffset: Float64Array;
  dataHash: BigUint64Array;
  metaOffset: Float64Array;
  metaLength: Float64Array;
  metaHash: BigUint64Array;
  /** Sparse: only external entries have a key. */
  readonly externalKey = new Map<number, Uint8Array>();
  /**
   * True while every name added is greater (bytewise) than the one before:
   * then every index page is already in order and needs no sort.
   */
  inOrder = true;
  /** The last name added, when known as a string of ASCII (whose order is its bytes' order). */
  private lastAscii: string | undefined;
  /** Open-addressing set of entry numbers keyed by name hash, for duplicate checks. */
  private slots = new Int32Array(0);

  constructor(initial = 1024) {
    this.cap = initial;
    this.nameStart = new Float64Array(initial);
    this.nameLen = new Uint32Array(initial);
    this.nameHash = new BigUint64Array(initial);
    this.nameKey = new Uint32Array(initial);
    this.flags = new Uint8Array(initial);
    this.codec = new Uint8Array(initial);
    this.size = new Float64Array(initial);
    this.storedSize = new Float64Array(initial);
    this.dataOffset = new Float64Array(initial);
    this.dataHash = new BigUint64Array(initial);
    this.metaOffset = new Float64Array(initial);
    this.metaLength = new Float64Array(initial);
    this.metaHash = new BigUint64Array(initial);
  }

  name(i: number): Uint8Array {
    const s = this.nameStart[i]!;
    return this.arena.subarray(s, s + this.nameLen[i]!);
  }

  private reserveArena(bytes: number): void {
    if (this.arenaUsed + bytes <= this.arena.length) return;
    let next = Math.ceil(this.arena.length * 1.5);
    while (next < this.arenaUsed + bytes) next = Math.ceil(next * 1.5);
    const a = new Uint8Array(next);
    a.set(this.arena.subarray(0, this.arenaUsed));
    this.arena = a;
  }

  /** Unsigned bytewise comparison of two entries' names (compareBytes without views). */
  compareNames(a: number, b: number): number {
    const arena = this.arena;
    const sa = this.nameStart[a]!;
    const sb = this.nameStart[b]!;
    const la = this.nameLen[a]!;
    const lb = this.nameLen[b]!;
    const n = Math.min(la, lb);
    for (let k = 0; k < n; k++) {
      const d = arena[sa + k]! - arena[sb + k]!;
      if (d !== 0) return d;
    }
    return la - lb;
  }

  /**
   * Encodes `name` as UTF-8 just past the last name, without adding it, and
   * returns its length in bytes. Then `pushStaged` adds it (no copy), or the
   * next stage overwrites it. No allocation for an ASCII name.
   */
  stageName(name: string): number {
    const n = name.length;
    this.reserveArena(n * 3);
    const arena = this.arena;
    const at = this.arenaUsed;
    for (let k = 0; k < n; k++) {
      const c = name.charCodeAt(k);
      if (c >= 0x80) return encoder.encodeInto(name, arena.subarray(at)).written;
      arena[at + k] = c;
    }
    return n;
  }

  /** True when the staged name (`length` bytes, `hash`) is already an entry's name. */
  hasStaged(length: number, hash: bigint, key: number): boolean {
    this.prepareSlots();
    const mask = this.slots.length - 1;
    const arena = this.arena;
    const at = this.arenaUsed;
    probe: for (let s = key & mask; ; s = (s + 1) & mask) {
      const e = this.slots[s]!;
      if (e === 0) return false;
      if (this.nameKey[e - 1] !== key || this.nameLen[e - 1] !== length || this.nameHash[e - 1] !== hash) continue;
      const start = this.nameStart[e - 1]!;
      for (let k = 0; k < length; k++) if (arena[start + k] !== arena[at + k]) continue probe;
      return true;
    }
  }

  /**
   * Adds the name staged by `stageName` (`length` of its bytes) and returns
   * its entry number. `key` is `hashKey(hash)`;
   * `asString`, the name as a string when it is all ASCII, makes keeping
   * `inOrder` cheaper.
   */
  pushStaged(length: number, hash: bigint, key = hashKey(hash), asString?: string): number {
    if (this.count === this.cap) this.grow();
    const i = this.count++;
    this.nameStart[i] = this.arenaUsed;
    this.nameLen[i] = length;
    this.nameHash[i] = hash;
    this.nameKey[i] = key;
    this.arenaUsed += length;
    if (this.inOrder && i > 0) {
      // For ASCII strings, code unit order is byte order (a native comparison).
      const prev = this.lastAscii;
      this.inOrder = prev !== undefined && asString !== undefined ? prev < asString : this.compareNames(i - 1, i) < 0;
    }
    this.lastAscii = asString;
    if (this.slots.length > 0) this.insertSlot(i);
    return i;
  }

  /**
   * Fills entry `i`'s body and meta columns: the one place a row is written.
   * `metaOffset` is relative to META (the writer's spill buffer) until close.
   */
  setRow(
    i: number,
    flags: number,
    codec: number,
    size: number,
    storedSize: number,
    dataOffset: number,
    dataHash: bigint,
    metaOffset: number,
    metaLength: number,
    metaHash: bigint,
  ): void {
    this.flags[i] = flags;
    this.codec[i] = codec;
    this.size[i] = size;
    this.storedSize[i] = storedSize;
    this.dataOffset[i] = dataOffset;
    this.dataHash[i] = dataHash;
    this.metaOffset[i] = metaOffset;
    this.metaLength[i] = metaLength;
    this.metaHash[i] = metaHash;
  }

  /**
   * The table as the v2 index builder's record source: one record object,
   * refilled from the columns for each entry, so the index is encoded
   * straight from the table without an object per entry. Meta offsets
   * become absolute with `metaStart`.
   */
  records(metaStart: number): IndexRecordSource {
    const rec = {
      name: new Uint8Array(0) as Uint8Array,
      flags: 0,
      codec: 0,
      size: 0,
      storedSize: 0,
      dataOffset: 0,
      dataHash: 0n,
      externalKey: undefined as Uint8Array | undefined,
      metaLength: 0,
      metaOffset: 0,
      metaHash: 0n,
    };
    return {
      count: this.count,
      at: (i: number): V2RecordInput => {
        rec.name = this.name(i);
        rec.flags = this.flags[i]!;
        rec.codec = this.codec[i]!;
        rec.size = this.size[i]!;
        rec.storedSize = this.storedSize[i]!;
        rec.dataOffset = this.dataOffset[i]!;
        rec.dataHash = this.dataHash[i]!;
        rec.externalKey = rec.flags & FLAG_EXTERNAL ? this.externalKey.get(i) : undefined;
        rec.metaLength = this.metaLength[i]!;
        rec.metaOffset = rec.metaLength > 0 ? metaStart + this.metaOffset[i]! : 0;
        rec.metaHash = this.metaHash[i]!;
        return rec;
      },
      nameKey: (i: number): number => this.nameKey[i]!,
      compareNames: (a: number, b: number): number => this.compareNames(a, b),
    };
  }

  private grow(): void {
    // 1.5x growth: less slack than doubling for archives of millions of entries.
    const cap = Math.ceil(this.cap * 1.5);
    const f64 = (a: Float64Array): Float64Array => {
      const n = new Float64Array(cap);
      n.set(a);
      return n;
    };
    const b64 = (a: BigUint64Array): BigUint64Array => {
      const n = new BigUint64Array(cap);
      n.set(a);
      return n;
    };
    const u8 = (a: Uint8Array): Uint8Array => {
      const n = new Uint8Array(cap);
      n.set(a);
      return n;
    };
    this.nameStart = f64(this.nameStart);
    const nl = new Uint32Array(cap);
    nl.set(this.nameLen);
    this.nameLen = nl;
    this.nameHash = b64(this.nameHash);
    const nk = new Uint32Array(cap);
    nk.set(this.nameKey);
    this.nameKey = nk;
    this.flags = u8(this.flags);
    this.codec = u8(this.codec);
    this.size = f64(this.size);
    this.storedSize = f64(this.storedSize);
    this.dataOffset = f64(this.dataOffset);
    this.dataHash = b64(this.dataHash);
    this.metaOffset = f64(this.metaOffset);
    this.metaLength = f64(this.metaLength);
    this.metaHash = b64(this.metaHash);
    this.cap = cap;
  }

  /** Enables the duplicate index on first use; keeps its load factor below 3/4. */
  private prepareSlots(): void {
    if (this.slots.length === 0 || this.count * 4 >= this.slots.length * 3) this.rebuildSlots();
  }

  private insertSlot(i: number): void {
    if ((this.count + 1) * 4 >= this.slots.length * 3) {
      this.rebuildSlots();
      return;
    }
    const mask = this.slots.length - 1;
    let s = this.nameKey[i]! & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = i + 1;
  }

  private rebuildSlots(): void {
    let size = 1024;
    // Load factor between 3/8 and 3/4: linear probing stays short, 4-11 bytes per entry.
    while (size < (this.count + 1) * 2) size *= 2;
    this.slots = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < this.count; i++) {
      let s = this.nameKey[i]! & mask;
      while (this.slots[s] !== 0) s = (s + 1) & mask;
      this.slots[s] = i + 1;
    }
  }
}
