import { FLAG_TOMBSTONE } from "../format/constants.js";
import type { EntryRecord } from "../format/record.js";
import { decodeV1Index } from "../format/v1/layout.js";
import type { V1Footer } from "../format/v1/layout.js";
import type { ArchiveIndex, Tail } from "./archive-index.js";
import type { ByteRange, IndexBytes } from "./index-bytes.js";

/** A v1 index: one block, read whole at open, looked up in a map (Python dict semantics). */
export class V1Index implements ArchiveIndex {
  readonly version = 1 as const;
  private readonly byName: Map<string, EntryRecord>;

  private constructor(
    private readonly records: EntryRecord[],
    private readonly footer: V1Footer,
  ) {
    // Python dict semantics: the last record of a name wins, listed at its first position.
    this.byName = new Map();
    for (const r of records) this.byName.set(r.name, r);
    for (const [name, r] of this.byName) if (r.flags & FLAG_TOMBSTONE) this.byName.delete(name);
  }

  static async open(footer: V1Footer, tail: Tail, bytesOf: IndexBytes, signal?: AbortSignal): Promise<V1Index> {
    const [index] = await bytesOf.load([{ offset: footer.indexStart, length: footer.indexLength }], signal);
    return new V1Index(decodeV1Index(index!, footer, tail.size), footer);
  }

  indexRanges(): ByteRange[] {
    return [{ offset: this.footer.indexStart, length: this.footer.indexLength }];
  }

  get entryCount(): number {
    return this.byName.size;
  }

  async lookupMany(names: readonly string[]): Promise<(EntryRecord | undefined)[]> {
    return names.map((n) => this.byName.get(n));
  }

  peek(name: string): EntryRecord | null {
    return this.byName.get(name) ?? null;
  }

  async lookupOne(name: string): Promise<EntryRecord | null> {
    return this.byName.get(name) ?? null;
  }

  async list(): Promise<string[]> {
    return [...this.byName.keys()];
  }

  async *allRecords(): AsyncGenerator<EntryRecord> {
    yield* this.records;
  }

  async *recordPages(): AsyncGenerator<readonly EntryRecord[]> {
    if (this.byName.size > 0) yield [...this.byName.values()];
  }

  readonly pageCount = 0;
}
