import { bytesEqual } from "./bytes.js";

/**
 * The writer's record of every entry added so far, as columns in typed
 * arrays plus one arena for all names: 86 bytes of columns per entry, its
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
  /** Open-addressing set of entry numbers keyed by name hash, for duplicate checks. */
  private slots = new Int32Array(0);

  constructor(initial = 1024) {
    this.cap = initial;
    this.nameStart = new Float64Array(initial);
    this.nameLen = new Uint32Array(initial);
    this.nameHash = new BigUint64Array(initial);
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

  /** Adds a name and returns its entry number; the caller then fills the columns. */
  push(name: Uint8Array, hash: bigint): number {
    if (this.count === this.cap) this.grow();
    if (this.arenaUsed + name.length > this.arena.length) {
      let next = Math.ceil(this.arena.length * 1.5);
      while (next < this.arenaUsed + name.length) next = Math.ceil(next * 1.5);
      const a = new Uint8Array(next);
      a.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = a;
    }
    const i = this.count++;
    this.arena.set(name, this.arenaUsed);
    this.nameStart[i] = this.arenaUsed;
    this.nameLen[i] = name.length;
    this.nameHash[i] = hash;
    this.arenaUsed += name.length;
    if (this.slots.length > 0) this.insertSlot(i);
    return i;
  }

  /** Forgets the most recently pushed entry (its body failed validation before any byte was written). */
  pop(): void {
    const i = --this.count;
    this.arenaUsed = this.nameStart[i]!;
    if (this.slots.length > 0) this.rebuildSlots();
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

  /** True when an entry with these name bytes exists. Enables the duplicate index on first use. */
  hasName(name: Uint8Array, hash: bigint): boolean {
    if (this.slots.length === 0) this.rebuildSlots();
    if (this.count * 4 >= this.slots.length * 3) this.rebuildSlots();
    const mask = this.slots.length - 1;
    for (let s = Number(hash & BigInt(mask)); ; s = (s + 1) & mask) {
      const e = this.slots[s]!;
      if (e === 0) return false;
      if (this.nameHash[e - 1] === hash && bytesEqual(this.name(e - 1), name)) return true;
    }
  }

  private insertSlot(i: number): void {
    if ((this.count + 1) * 4 >= this.slots.length * 3) {
      this.rebuildSlots();
      return;
    }
    const mask = this.slots.length - 1;
    let s = Number(this.nameHash[i]! & BigInt(mask));
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
      let s = Number(this.nameHash[i]! & BigInt(mask));
      while (this.slots[s] !== 0) s = (s + 1) & mask;
      this.slots[s] = i + 1;
    }
  }
}
