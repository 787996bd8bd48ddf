/**
 * Round-trip properties: whatever is added comes back, byte for byte, through
 * every read path, in both formats, with the I/O the spec promises.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { DesReader } from "../src/read/reader.js";
import type { DesReader as DesReaderType } from "../src/read/reader.js";
import { DesError } from "../src/errors.js";
import { MemorySink } from "../src/sinks/memory.js";
import { MemorySource } from "../src/sources/memory.js";
import { DesWriter } from "../src/write/writer.js";
import type { Compression } from "../src/format/constants.js";
import {
  RecordingSource,
  buildArchive,
  bytesEqual,
  canon,
  collect,
  compareUtf8,
  hex,
  parseV1Footer,
  parseV2Footer,
  utf8Length,
} from "./helpers/archives.js";
import type { BodyForm, EntrySpec } from "./helpers/archives.js";

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/** A body described compactly (so counterexamples print small) and made deterministically. */
interface BodySpec {
  len: number;
  seed: number;
  kind: "random" | "text" | "zeros";
}

function makeBody(b: BodySpec): Uint8Array {
  const out = new Uint8Array(b.len);
  let s = b.seed >>> 0 || 1;
  const words = ["alpha ", "beta ", "gamma\n", "żółw ", "🦀 ", "0123456789 "].map((w) => Buffer.from(w));
  if (b.kind === "zeros") return out;
  if (b.kind === "text") {
    let at = 0;
    while (at < b.len) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const w = words[s % words.length]!;
      out.set(w.subarray(0, Math.min(w.length, b.len - at)), at);
      at += w.length;
    }
    return out;
  }
  for (let i = 0; i < b.len; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

const bodyArb: fc.Arbitrary<BodySpec> = fc.record({
  len: fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 300 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 20 * 1024 }) },
  ),
  seed: fc.integer(),
  kind: fc.constantFrom("random", "text", "zeros"),
});

/** Cuts a string to at most `max` UTF-8 bytes at a code point boundary. */
function clampUtf8(s: string, max: number): string {
  let out = "";
  let n = 0;
  for (const cp of s) {
    const len = utf8Length(cp);
    if (n + len > max) break;
    out += cp;
    n += len;
  }
  return out;
}

const V1_FORBIDDEN = /[/\\:*?"<>|]/g;

const namePiece = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 40, maxLength: 90 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "😀",
      "𝄞",
      "\u{10FFFF}",
      "é",
      "e\u0301",
      "/",
      "a/b/",
      "..",
      " ",
      "\u00ff",
      "\uFFFF",
      "\u0080",
      "~",
      "A",
      "a",
      "Ā",
      "日本",
    ),
  },
);

function nameArb(v1: boolean): fc.Arbitrary<string> {
  return fc.array(namePiece, { minLength: 1, maxLength: 5 }).map((parts) => {
    let s = parts.join("").replace(/\0/g, "_");
    if (v1) s = s.replace(V1_FORBIDDEN, "_");
    s = clampUtf8(s, 300);
    return s.length === 0 ? "x" : s;
  });
}

/** Any MessagePack value the writer accepts (no undefined inside, no Date/ext). */
const msgpackArb: fc.Arbitrary<unknown> = fc
  .letrec<{ tree: unknown; leaf: unknown; arr: unknown[]; map: Record<string, unknown> }>((tie) => ({
    tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("leaf"), tie("arr"), tie("map")),
    leaf: fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.double(),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      fc.string(),
      fc.string({ unit: "binary", maxLength: 20 }),
      fc.uint8Array({ maxLength: 40 }),
    ),
    arr: fc.array(tie("tree"), { maxLength: 5 }),
    map: fc.dictionary(
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.string({ unit: "binary", maxLength: 6 }),
        fc.constantFrom("size", "a", "0", "10", "constructor", "toString"),
      ),
      tie("tree"),
      { maxKeys: 5 },
    ),
  }))
  .tree.filter((v) => !hasProtoKey(v));

/** The decoder refuses `__proto__` map keys, so the writer does too (tested on its own below). */
function hasProtoKey(v: unknown): boolean {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return false;
  if (Array.isArray(v)) return v.some(hasProtoKey);
  return Object.keys(v).some((k) => k === "__proto__" || hasProtoKey((v as Record<string, unknown>)[k]));
}

/** Plain objects of JSON values (plus NaN/Infinity, which Python writes bare), as a v1 caller gives them. */
const jsonValueArb: fc.Arbitrary<unknown> = fc.letrec<{ tree: unknown; leaf: unknown }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("leaf"),
    fc.array(tie("tree"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie("tree"), { maxKeys: 4 }),
  ),
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(), // NaN and ±Infinity are written bare, as Python does
    fc.integer(),
    fc.maxSafeInteger(),
    fc.string(),
    fc.string({ unit: "binary", maxLength: 20 }),
  ),
})).tree;

const v1MetaArb: fc.Arbitrary<Record<string, unknown> | undefined> = fc.option(
  fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("size", "mime", "i", "10")), jsonValueArb, {
    maxKeys: 5,
  }),
  { nil: undefined, freq: 4 },
);

const compressionArb: fc.Arbitrary<Compression | undefined> = fc.constantFrom(undefined, "none", "gzip", "brotli");
const formArb: fc.Arbitrary<BodyForm> = fc.constantFrom("bytes", "readable", "iterable");
const chunksArb = fc.array(fc.integer({ min: 1, max: 6000 }), { minLength: 1, maxLength: 3 });

interface GenEntry {
  name: string;
  body: BodySpec;
  meta: unknown;
  compress: Compression | undefined;
  form: BodyForm;
  chunks: number[];
}

function entryArb(v1: boolean): fc.Arbitrary<GenEntry> {
  return fc.record({
    name: nameArb(v1),
    body: bodyArb,
    meta: v1 ? v1MetaArb : fc.option(msgpackArb, { nil: undefined, freq: 3 }),
    compress: v1 ? fc.constant(undefined) : compressionArb,
    form: formArb,
    chunks: chunksArb,
  });
}

function toSpecs(entries: readonly GenEntry[]): EntrySpec[] {
  return entries.map((e) => ({
    name: e.name,
    data: makeBody(e.body),
    meta: e.meta,
    ...(e.compress !== undefined ? { compress: e.compress } : {}),
    form: e.form,
    chunks: e.chunks,
  }));
}

// ---------------------------------------------------------------------------
// Comparison of meta, "sensibly": one canonical text per value
// ---------------------------------------------------------------------------

/**
 * What a v2 meta reads back as, given what was written: MessagePack with the
 * library's encoder keeps every value except that -0 is an integer 0 (an
 * integral number is encoded as an int), and bigint comes back as bigint.
 */
function expectedV2Meta(v: unknown): unknown {
  if (typeof v === "number") return Object.is(v, -0) ? 0 : v;
  if (Array.isArray(v)) return v.map(expectedV2Meta);
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v))
    Object.defineProperty(out, k, {
      value: expectedV2Meta((v as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** Python json.loads of what the v1 writer dumps: safe integral bigints become numbers. */
function expectedJson(v: unknown): unknown {
  if (typeof v === "bigint") return v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v;
  if (Array.isArray(v)) return v.map(expectedJson);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v))
    Object.defineProperty(out, k, {
      value: expectedJson((v as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** The v1 stored meta: the caller's keys, then `size` (in place when the caller had one). */
function expectedV1Meta(meta: Record<string, unknown> | undefined, size: number): unknown {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(meta ?? {}))
    Object.defineProperty(out, k, {
      value: expectedJson(meta![k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  Object.defineProperty(out, "size", { value: size, enumerable: true, writable: true, configurable: true });
  return out;
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

function pickSample<T>(items: readonly T[], max: number, salt: number): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  const step = items.length / max;
  for (let i = 0; i < max; i++) out.push(items[Math.floor(i * step + (salt % Math.max(1, Math.floor(step))))]!);
  return out;
}

function bytesMsg(name: string, got: Uint8Array, want: Uint8Array): string {
  return `entry ${JSON.stringify(name)}: got ${hex(got)} want ${hex(want)}`;
}

interface Expected {
  name: string;
  data: Uint8Array;
  meta: unknown;
  compression: Compression;
}

/** Every read path of one open reader against the expected entries. */
async function checkReads(
  reader: DesReaderType,
  expected: readonly Expected[],
  opts: { sample: number; salt: number },
): Promise<void> {
  const names = expected.map((e) => e.name);
  const byName = new Map(expected.map((e) => [e.name, e]));

  // get / stream / getMeta / stat / has on a sample (all when small)
  for (const e of pickSample(expected, opts.sample, opts.salt)) {
    expect(await reader.has(e.name)).toBe(true);
    const got = await reader.get(e.name);
    expect(bytesEqual(got, e.data), bytesMsg(e.name, got, e.data)).toBe(true);
    const streamed = await collect(reader.stream(e.name));
    expect(bytesEqual(streamed, e.data), `stream: ${bytesMsg(e.name, streamed, e.data)}`).toBe(true);
    expect(canon(await reader.getMeta(e.name)), `getMeta ${JSON.stringify(e.name)}`).toBe(canon(e.meta));
    const st = await reader.stat(e.name);
    expect(st.name).toBe(e.name);
    expect(st.size).toBe(e.data.length);
    expect(st.compression).toBe(e.compression);
    expect(st.external).toBe(false);
    expect(st.externalKey).toBeUndefined();
    if (e.compression === "none") expect(st.storedSize).toBe(e.data.length);
    else expect(st.storedSize).toBeGreaterThan(0); // a compressed stream has a header even when empty
    expect(st.metaLength === 0).toBe(e.meta === undefined);
  }

  // getMany: every name, in the order asked (reversed, to see the order is ours, not the archive's)
  const asked = [...names].reverse();
  const many = await reader.getMany(asked);
  expect([...many.keys()]).toEqual(asked);
  for (const [n, b] of many)
    expect(bytesEqual(b, byName.get(n)!.data), `getMany: ${bytesMsg(n, b, byName.get(n)!.data)}`).toBe(true);

  // iterMany: each name exactly once
  const seen = new Set<string>();
  for await (const [n, b] of reader.iterMany(names)) {
    expect(seen.has(n), `iterMany yielded ${JSON.stringify(n)} twice`).toBe(false);
    seen.add(n);
    expect(bytesEqual(b, byName.get(n)!.data), `iterMany: ${bytesMsg(n, b, byName.get(n)!.data)}`).toBe(true);
  }
  expect(seen.size).toBe(names.length);

  // getMetaMany
  const metas = await reader.getMetaMany(asked);
  expect([...metas.keys()]).toEqual(asked);
  for (const [n, m] of metas) expect(canon(m), `getMetaMany ${JSON.stringify(n)}`).toBe(canon(byName.get(n)!.meta));

  // a name that is not there
  const missing = "\u{1F47B}not-in-archive\u{1F47B}";
  if (!byName.has(missing)) {
    expect(await reader.has(missing)).toBe(false);
    await expect(reader.get(missing)).rejects.toMatchObject({ code: "DES_NOT_FOUND" });
    expect((await reader.getMany([missing], { missing: "skip" })).size).toBe(0);
  }
}

/** DES_PROP_SCALE=10 for a long soak; fast-check prints the seed of any failure (replay with its `seed` and `path`). */
const SCALE = Number(process.env.DES_PROP_SCALE ?? 1);
const PROP_V2_RUNS = Math.round(500 * SCALE);
const PROP_MULTI_RUNS = Math.round(30 * SCALE);
const PROP_V1_RUNS = Math.round(300 * SCALE);

describe("v2 round trip (property)", () => {
  it("gives back names, bytes, meta and stats through every read path, reproducibly", async () => {
    const coverage = {
      runs: 0,
      entries: 0,
      bodyBytes: 0,
      biggerThanTail: 0,
      indexOutsideTail: 0,
      emptyArchives: 0,
      emptyBodies: 0,
      compressed: 0,
      streamed: 0,
      withMeta: 0,
      longNames: 0,
      astralNames: 0,
    };
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(entryArb(false), { selector: (e) => e.name, maxLength: 24 }),
        fc.integer({ min: 256, max: 65536 }),
        fc.integer({ min: 0, max: 1000 }),
        async (gen, tailSize, salt) => {
          const specs = toSpecs(gen);
          const archive = await buildArchive(specs);
          const footer = parseV2Footer(archive);
          coverage.runs++;
          if (archive.length > tailSize) coverage.biggerThanTail++;
          if (footer.indexStart < archive.length - tailSize) coverage.indexOutsideTail++;
          if (specs.length === 0) coverage.emptyArchives++;
          coverage.entries += specs.length;
          for (const s of specs) {
            coverage.bodyBytes += s.data.length;
            if (s.data.length === 0) coverage.emptyBodies++;
            if (s.compress === "gzip" || s.compress === "brotli") coverage.compressed++;
            if (s.form !== "bytes") coverage.streamed++;
            if (s.meta !== undefined) coverage.withMeta++;
            if (utf8Length(s.name) > 200) coverage.longNames++;
            if (/[\u{10000}-\u{10FFFF}]/u.test(s.name)) coverage.astralNames++;
          }
          expect(footer.archiveLength).toBe(archive.length);
          expect(footer.entryCount).toBe(specs.length);

          const source = new RecordingSource(archive);
          const reader = await DesReader.open(source, { tailSize });
          // Opening is one read (the tail), whatever the size, when footer and root fit in the tail.
          if (128 + 4 * 2 ** footer.pageBits <= tailSize) expect(source.stats.reads).toBe(1);
          expect(reader.ioStats.requests).toBe(source.stats.reads);
          expect(reader.formatVersion).toBe(2);

          const expected: Expected[] = specs.map((s) => ({
            name: s.name,
            data: s.data,
            meta: expectedV2Meta(s.meta),
            compression: s.compress ?? "none",
          }));
          const sorted = specs.map((s) => s.name).sort(compareUtf8);
          expect(await reader.list()).toEqual(sorted);

          await checkReads(reader, expected, { sample: 12, salt });

          // Stored sizes fill DATA exactly, back to back, in the order added.
          let at = footer.dataStart;
          for (const s of specs) {
            const st = await reader.stat(s.name);
            if (st.storedSize > 0) expect(st.offset, `offset of ${JSON.stringify(s.name)}`).toBe(at);
            at += st.storedSize;
          }
          expect(at - footer.dataStart).toBe(footer.dataLength);

          const report = await reader.verify();
          expect(report.problems).toEqual([]);
          expect(report.ok).toBe(true);
          expect(report.entries).toBe(specs.length);
          expect(report.metaChecked).toBe(specs.filter((s) => s.meta !== undefined).length);

          // A small archive is read once, at open, and never again.
          if (archive.length <= tailSize)
            expect(source.stats.reads, "reads after open of an archive inside the tail").toBe(1);
          expect(reader.ioStats.requests).toBe(source.stats.reads);
          await reader.close();

          // Reproducible: the same adds give the same bytes.
          const again = await buildArchive(specs);
          expect(bytesEqual(again, archive), "the same adds gave different bytes").toBe(true);
        },
      ),
      { numRuns: PROP_V2_RUNS },
    );
    // The generators must actually reach the cases that matter.
    console.log("v2 round-trip coverage", coverage);
    expect(coverage.biggerThanTail).toBeGreaterThan(0);
    expect(coverage.indexOutsideTail).toBeGreaterThan(0);
    expect(coverage.compressed).toBeGreaterThan(0);
    expect(coverage.streamed).toBeGreaterThan(0);
    expect(coverage.emptyBodies).toBeGreaterThan(0);
    expect(coverage.astralNames).toBeGreaterThan(0);
    expect(coverage.longNames).toBeGreaterThan(0);
  });

  it("spreads big indexes over pages and looks a name up with at most one page read and one data read", async () => {
    const multiArb = fc.record({
      mode: fc.constantFrom("long-names", "many-names"),
      prefix: nameArb(false),
      count: fc.integer({ min: 0, max: 400 }),
      tailSize: fc.integer({ min: 256, max: 65536 }),
      compress: compressionArb,
      withMeta: fc.boolean(),
      seed: fc.integer(),
      form: formArb,
    });
    await fc.assert(
      fc.asyncProperty(multiArb, async (g) => {
        // long names: ~120-140 entries of up to 300 UTF-8 bytes; many names: ~2500-2900 short ones.
        const specs: EntrySpec[] = [];
        const n = g.mode === "long-names" ? 120 + (g.count % 20) : 2500 + g.count;
        let longBase = clampUtf8(g.prefix.repeat(300), 290);
        longBase += "_".repeat(Math.max(0, 250 - utf8Length(longBase)));
        for (let i = 0; i < n; i++) {
          const name = g.mode === "long-names" ? `${longBase}#${i}` : `${clampUtf8(g.prefix, 12)}/${i.toString(36)}`;
          const len = (g.seed + i * 7919) % 97 === 0 ? 0 : ((g.seed >>> 3) + i * 31) % 64;
          specs.push({
            name,
            data: makeBody({ len, seed: g.seed + i, kind: i % 3 === 0 ? "text" : "random" }),
            meta:
              g.withMeta && i % 2 === 0
                ? { i, name, big: 2n ** 63n + BigInt(i) * 2n ** 40n, neg: -(2n ** 63n) + BigInt(i) }
                : undefined,
            ...(g.compress !== undefined && i % 4 !== 0 ? { compress: g.compress } : {}),
            form: i % 50 === 0 ? g.form : "bytes",
          });
        }
        const archive = await buildArchive(specs);
        const footer = parseV2Footer(archive);
        expect(footer.pageBits, "the index was meant to need several pages").toBeGreaterThan(0);
        expect(128 + 4 * 2 ** footer.pageBits).toBeLessThanOrEqual(256);

        const source = new RecordingSource(archive);
        const reader = await DesReader.open(source, { tailSize: g.tailSize });
        expect(source.stats.reads).toBe(1);
        const expected: Expected[] = specs.map((s) => ({
          name: s.name,
          data: s.data,
          meta: expectedV2Meta(s.meta),
          compression: s.compress ?? "none",
        }));
        expect(await reader.list()).toEqual(specs.map((s) => s.name).sort(compareUtf8));
        await checkReads(reader, expected, { sample: 6, salt: g.seed >>> 0 });
        const report = await reader.verify();
        expect(report.ok, JSON.stringify(report.problems.slice(0, 3))).toBe(true);
        expect(report.pages).toBe(2 ** footer.pageBits);
        expect(report.entries).toBe(n);
        await reader.close();

        // Cold lookups: a fresh reader per name costs the tail, then at most a page and the data.
        for (const s of pickSample(specs, 6, g.seed >>> 0)) {
          const cold = new RecordingSource(archive);
          const r = await DesReader.open(cold, { tailSize: g.tailSize });
          expect(cold.stats.reads).toBe(1);
          const got = await r.get(s.name);
          expect(bytesEqual(got, s.data)).toBe(true);
          const after = cold.lengths.slice(1);
          expect(
            after.length,
            `cold get of ${JSON.stringify(s.name)} read ${JSON.stringify(after)}`,
          ).toBeLessThanOrEqual(2);
          if (after.length > 0) expect(after[0]!, "page read").toBeLessThanOrEqual(65536);
          expect(r.ioStats.requests).toBe(cold.stats.reads);
          // The same page again costs no index read: only data (none when empty or in the tail).
          const before = cold.stats.reads;
          await r.get(s.name);
          expect(cold.stats.reads - before).toBeLessThanOrEqual(1);
          await r.close();
        }

        const again = await buildArchive(specs);
        expect(bytesEqual(again, archive), "the same adds gave different bytes").toBe(true);
      }),
      { numRuns: PROP_MULTI_RUNS },
    );
  });

  it("refuses meta it could not give back (bigint beyond 64 bits, __proto__ keys) and stays usable", async () => {
    const badLeaf = fc.oneof(
      fc.bigInt({ min: 2n ** 64n, max: 2n ** 80n }),
      fc.bigInt({ min: -(2n ** 80n), max: -(2n ** 63n) - 1n }),
      fc.constant(new Map<unknown, unknown>([[true, 1]])),
      fc.constant(new Map<unknown, unknown>([["__proto__", 1]])),
    );
    const badMeta = fc.oneof(
      badLeaf,
      badLeaf.map((b) => [1, b]),
      badLeaf.map((b) => ({ a: { b } })),
      fc.constant(
        Object.defineProperty({}, "__proto__", { value: 1, enumerable: true, writable: true, configurable: true }),
      ),
      fc.constant({
        deep: [
          Object.defineProperty({}, "__proto__", {
            value: { x: 1 },
            enumerable: true,
            writable: true,
            configurable: true,
          }),
        ],
      }),
    );
    await fc.assert(
      fc.asyncProperty(badMeta, msgpackArb, async (bad, good) => {
        const sink = new MemorySink();
        const w = await DesWriter.create(sink);
        const err = await w.add("x", new Uint8Array([1, 2, 3]), { meta: bad }).catch((e: unknown) => e);
        expect(err, `meta ${canon(bad)} was accepted`).toBeInstanceOf(DesError);
        expect((err as DesError).code).toBe("DES_INVALID_ARGUMENT");
        await w.add("x", new Uint8Array([4, 5]), { meta: good });
        await w.close();
        const r = await DesReader.open(new MemorySource(sink.bytes()));
        expect([...(await r.get("x"))]).toEqual([4, 5]);
        expect(canon(await r.getMeta("x"))).toBe(canon(expectedV2Meta(good)));
      }),
      { numRuns: 40 },
    );
  });

  it("refuses a second add of the same name (v2)", async () => {
    await fc.assert(
      fc.asyncProperty(nameArb(false), async (name) => {
        await expect(
          buildArchive([
            { name, data: new Uint8Array([1]) },
            { name, data: new Uint8Array([2]) },
          ]),
        ).rejects.toMatchObject({ code: "DES_DUPLICATE" });
      }),
      { numRuns: 20 },
    );
  });
});

describe("v1 round trip (property)", () => {
  it("gives back bytes and meta (+ size) with last-wins duplicates, reproducibly", async () => {
    const pool = fc.array(nameArb(true), { minLength: 1, maxLength: 4 });
    const v1Arb = fc
      .tuple(pool, fc.array(fc.tuple(entryArb(true), fc.nat(), fc.boolean()), { maxLength: 24 }))
      .map(([names, entries]) =>
        entries.map(([e, pick, dup]) => (dup ? { ...e, name: names[pick % names.length]! } : e)),
      );
    await fc.assert(
      fc.asyncProperty(
        v1Arb,
        fc.integer({ min: 256, max: 65536 }),
        fc.integer({ min: 0, max: 1000 }),
        async (gen, tailSize, salt) => {
          const specs = toSpecs(gen);
          const archive = await buildArchive(specs, { format: 1 });
          const footer = parseV1Footer(archive);
          expect(footer.fileCount).toBe(specs.length);

          const source = new RecordingSource(archive);
          const reader = await DesReader.open(source, { tailSize });
          expect(reader.formatVersion).toBe(1);
          const indexInTail = footer.indexStart >= archive.length - Math.min(tailSize, archive.length);
          expect(source.stats.reads).toBe(indexInTail ? 1 : 2);

          // Python dict semantics: first position, last value.
          const last = new Map<string, EntrySpec>();
          const order: string[] = [];
          for (const s of specs) {
            if (!last.has(s.name)) order.push(s.name);
            last.set(s.name, s);
          }
          expect(await reader.list()).toEqual(order);
          expect(reader.entryCount).toBe(order.length);
          const expected: Expected[] = order.map((n) => {
            const s = last.get(n)!;
            return {
              name: n,
              data: s.data,
              meta: expectedV1Meta(s.meta as Record<string, unknown> | undefined, s.data.length),
              compression: "none",
            };
          });
          await checkReads(reader, expected, { sample: 12, salt });

          const report = await reader.verify();
          expect(report.problems).toEqual([]);
          expect(report.ok).toBe(true);
          expect(report.entries).toBe(specs.length);
          if (archive.length <= tailSize)
            expect(source.stats.reads, "reads after open of an archive inside the tail").toBe(1);
          await reader.close();

          const again = await buildArchive(specs, { format: 1 });
          expect(bytesEqual(again, archive), "the same adds gave different bytes").toBe(true);
        },
      ),
      { numRuns: PROP_V1_RUNS },
    );
  });

  it('refuses v1 names with / \\ : * ? " < > |', async () => {
    await fc.assert(
      fc.asyncProperty(nameArb(true), fc.constantFrom(...'/\\:*?"<>|'), fc.nat(), async (name, bad, at) => {
        const i = at % (name.length + 1);
        const withBad = name.slice(0, i) + bad + name.slice(i);
        fc.pre(utf8Length(withBad) <= 65535);
        const err = await buildArchive([{ name: withBad, data: new Uint8Array(0) }], { format: 1 }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DesError);
        expect((err as DesError).code).toBe("DES_INVALID_ARGUMENT");
      }),
      { numRuns: 30 },
    );
  });
});
