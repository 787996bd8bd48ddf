/**
 * Corruption fuzz: flipped bytes, truncations, appended garbage and chopped
 * heads of v2 archives and of the Python v1 vectors. Whatever the damage:
 *
 * - only DesErrors with a documented code escape, never a TypeError,
 *   RangeError or plain Error, never an unhandled rejection, never a hang;
 * - the reader never asks its source for a range past the end or for more
 *   bytes than the source holds (GuardedSource records any such request);
 * - v2: no damaged byte ever comes back as data, meta, a name or a stat that
 *   differs from the original without an error, and verify() reports every
 *   flip outside the 7 reserved header bytes;
 * - v1 (no checksums): the reader returns exactly what the damaged index
 *   describes, and an external entry never returns archive bytes.
 *
 * A second fuzzer builds hostile v2 archives whose checksums are all valid but
 * whose records lie (see "Hostile but checksummed" below).
 *
 * Deterministic: DES_FUZZ_SEED picks the seed (printed in every failure, with
 * the case number and the mutation); DES_FUZZ_SCALE multiplies the case counts.
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { Encoder as MsgpackEncoder } from "@msgpack/msgpack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DesReader } from "../src/read/reader.js";
import type { EntryStat, VerifyReport } from "../src/read/reader.js";
import { DesError, DesExternalError } from "../src/errors.js";
import type { DesErrorCode } from "../src/errors.js";
import type { ExternalStore } from "../src/io/external.js";
import type { Compression } from "../src/format/constants.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import {
  GuardedSource,
  Prng,
  TimeoutError,
  buildArchive,
  bytesEqual,
  canon,
  collect,
  describeError,
  hex,
  DES_CODE_SET,
  isTypedDesError,
  parseV2Footer,
  withTimeout,
} from "./helpers/archives.js";
import type { EntrySpec } from "./helpers/archives.js";
import { loadManifest, vectorDir, vectorsPresent } from "./helpers/vectors.js";

const SEED = Number(process.env.DES_FUZZ_SEED ?? 0x5eed_de5);
const CASE_TIMEOUT_MS = 10_000;
const MAX_REPORTED_FAILURES = 25;
/** Scales every case count (DES_FUZZ_SCALE=10 for a long soak). */
const SCALE = Number(process.env.DES_FUZZ_SCALE ?? 1);
const n = (count: number): number => Math.max(1, Math.round(count * SCALE));

// ---------------------------------------------------------------------------
// Unhandled rejections / uncaught exceptions, attributed to the running case
// ---------------------------------------------------------------------------

const stray: string[] = [];
let currentCase = "(none)";
const onRejection = (reason: unknown): void => {
  stray.push(`unhandled rejection during ${currentCase}: ${describeError(reason)}`);
};
const onException = (err: unknown): void => {
  stray.push(`uncaught exception during ${currentCase}: ${describeError(err)}`);
};
beforeAll(() => {
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
});
afterAll(() => {
  process.off("unhandledRejection", onRejection);
  process.off("uncaughtException", onException);
});

// ---------------------------------------------------------------------------
// Base archives and what they hold
// ---------------------------------------------------------------------------

interface Truth {
  names: string[];
  data: Map<string, Uint8Array>;
  meta: Map<string, string>; // canonical text
  stat: Map<string, EntryStat>;
}

interface Region {
  name: string;
  start: number;
  end: number;
  weight: number;
  /** The entry whose bytes these are, when the region is one entry's data or meta. */
  owner?: string;
}

interface Base {
  label: string;
  version: 1 | 2;
  bytes: Uint8Array;
  truth: Truth;
  regions: Region[];
  /** Names exercised per case (all when small). */
  sample: number;
  externalBody?: { name: string; key: string; bytes: Uint8Array };
  archiveKey?: string;
  /** Fraction of cases that run verify() (1 = all). */
  verifyShare: number;
}

function statKey(s: EntryStat): string {
  return JSON.stringify({ ...s });
}

class MemoryStore implements ExternalStore {
  readonly returned = new Set<Uint8Array>();
  constructor(private readonly objects: ReadonlyMap<string, Uint8Array>) {}
  async put(): Promise<void> {
    throw new DesExternalError("read-only store");
  }
  async get(key: string): Promise<Uint8Array> {
    const b = this.objects.get(key);
    if (!b) throw new DesExternalError(`no external object ${JSON.stringify(key)}`);
    const copy = b.slice();
    this.returned.add(copy);
    return copy;
  }
  async *stream(key: string): AsyncIterable<Uint8Array> {
    yield await this.get(key);
  }
}

/** Reads the truth from an intact archive (and, for v2, checks it against what was written). */
async function readTruth(bytes: Uint8Array, store?: ExternalStore, archiveKey?: string): Promise<Truth> {
  const r = await DesReader.open(new GuardedSource(bytes), {
    ...(store ? { externalStore: store } : {}),
    ...(archiveKey ? { archiveKey } : {}),
  });
  const names = await r.list();
  const data = new Map<string, Uint8Array>();
  const meta = new Map<string, string>();
  const stat = new Map<string, EntryStat>();
  for (const name of names) {
    data.set(name, (await r.get(name)).slice());
    meta.set(name, canon(await r.getMeta(name)));
    stat.set(name, await r.stat(name));
  }
  const report = await r.verify();
  expect(report.ok, JSON.stringify(report.problems)).toBe(true);
  return { names, data, meta, stat };
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A PRNG for (seed, label, salt): independent streams, so one case can be replayed alone. */
function rng(label: string, salt: number): Prng {
  let h = fmix32(SEED >>> 0);
  for (const c of label) h = fmix32(h ^ c.charCodeAt(0));
  h = fmix32(h ^ fmix32(salt + 0x9e3779b9));
  return new Prng(h);
}

function textBody(p: Prng, len: number): Uint8Array {
  const words = ["lorem ", "ipsum ", "dolor\n", "zażółć ", "🦀 ", "42 "];
  let s = "";
  while (Buffer.byteLength(s) < len) s += p.pick(words);
  return new Uint8Array(Buffer.from(s).subarray(0, len));
}

function v2Specs(kind: "plain" | "compressed" | "multipage" | "empty"): EntrySpec[] {
  const p = rng(`specs-${kind}`, 1);
  if (kind === "empty") return [];
  if (kind === "multipage") {
    const out: EntrySpec[] = [];
    for (let i = 0; i < 150; i++) {
      const name = `${"ŁódźKraków/".repeat(20)}${"x".repeat(40)}#${i}`; // ~270 UTF-8 bytes
      const len = i % 17 === 0 ? 0 : p.int(1, 200);
      const compress: Compression = i % 3 === 0 ? "gzip" : i % 3 === 1 ? "none" : "brotli";
      out.push({
        name,
        data: i % 2 === 0 ? textBody(p, len) : p.bytes(len),
        ...(i % 2 === 0 ? { meta: { i, tag: `t${i}`, big: 2n ** 62n + BigInt(i) } } : {}),
        compress,
      });
    }
    out.push({ name: "big/one", data: p.bytes(90_000), meta: { big: true } }); // data far from the tail
    return out;
  }
  const c = (x: Compression): Compression => (kind === "compressed" ? x : "none");
  return [
    { name: "a.txt", data: textBody(p, 300), meta: { mime: "text/plain", n: 1 }, compress: c("gzip") },
    { name: "empty-with-meta", data: new Uint8Array(0), meta: { empty: true }, compress: c("gzip") },
    { name: "empty", data: new Uint8Array(0), compress: c("brotli") },
    {
      name: "bin/random",
      data: p.bytes(900),
      meta: { tags: ["x", "y"], big: 2n ** 60n + 7n, bin: p.bytes(9), f: 2.5 },
      compress: c("brotli"),
    },
    { name: "zażółć/🦀", data: p.bytes(400), compress: c("none") },
    { name: "z", data: new Uint8Array([0x7a]), meta: null, compress: c("gzip") },
    {
      name: "nested/deep/name",
      data: textBody(p, 1200),
      meta: { a: { b: { c: [1, -2, "x", null, true] } } },
      compress: c("brotli"),
      form: "readable",
      chunks: [100, 333],
    },
    { name: "𝄞", data: textBody(p, 64), meta: "just a string", compress: c("none") },
  ];
}

function v2Regions(bytes: Uint8Array, specs: readonly EntrySpec[], truth: Truth): Region[] {
  const f = parseV2Footer(bytes);
  const size = bytes.length;
  const rootStart = f.indexStart + f.indexLength - 4 * 2 ** f.pageBits;
  const regions: Region[] = [
    { name: "header-magic", start: 0, end: 9, weight: 2 },
    { name: "header-reserved", start: 9, end: 16, weight: 2 },
    { name: "pages", start: f.indexStart, end: rootStart, weight: 30 },
    { name: "root", start: rootStart, end: size - 128, weight: 6 },
    { name: "footer", start: size - 128, end: size, weight: 16 },
  ];
  const dataTotal = f.dataLength;
  for (const s of specs) {
    const st = truth.stat.get(s.name)!;
    if (st.storedSize > 0)
      regions.push({
        name: `data:${s.name}`,
        start: st.offset,
        end: st.offset + st.storedSize,
        weight: (24 * st.storedSize) / dataTotal + 0.2,
        owner: s.name,
      });
  }
  // META is back to back in the order added.
  let at = f.metaStart;
  for (const s of specs) {
    const st = truth.stat.get(s.name)!;
    if (st.metaLength > 0)
      regions.push({
        name: `meta:${s.name}`,
        start: at,
        end: at + st.metaLength,
        weight: (16 * st.metaLength) / Math.max(1, f.metaLength) + 0.2,
        owner: s.name,
      });
    at += st.metaLength;
  }
  expect(at).toBe(f.metaStart + f.metaLength);
  return regions.filter((r) => r.end > r.start);
}

async function v2Base(kind: "plain" | "compressed" | "multipage" | "empty"): Promise<Base> {
  const specs = v2Specs(kind);
  const bytes = await buildArchive(specs);
  const truth = await readTruth(bytes);
  // The truth read back is what was written (the round-trip tests check this in depth).
  expect(truth.names.length).toBe(specs.length);
  for (const s of specs) expect(bytesEqual(truth.data.get(s.name)!, s.data)).toBe(true);
  if (kind === "multipage") expect(parseV2Footer(bytes).pageBits).toBeGreaterThan(0);
  return {
    label: `v2-${kind}`,
    version: 2,
    bytes,
    truth,
    regions: v2Regions(bytes, specs, truth),
    sample: kind === "multipage" ? 6 : 100,
    verifyShare: 1,
  };
}

async function v1Base(name: "a_small" | "b_empty" | "c_many"): Promise<Base> {
  const bytes = new Uint8Array(fs.readFileSync(path.join(vectorDir(name), "archive.des")));
  const manifest = loadManifest(name);
  let externalBody: Base["externalBody"];
  let store: MemoryStore | undefined;
  const archiveKey = name === "c_many" ? "2025-01-15/shard_00.des" : undefined;
  for (const ext of manifest.external_files) {
    const b = new Uint8Array(fs.readFileSync(path.join(vectorDir(name), "s3", ext.s3_key)));
    externalBody = { name: ext.name, key: ext.s3_key, bytes: b };
    store = new MemoryStore(new Map([[ext.s3_key, b]]));
  }
  const truth = await readTruth(bytes, store, archiveKey);
  const raw = manifest.raw.index_entries_in_order;
  const size = bytes.length;
  const footer = Buffer.from(bytes.buffer, bytes.byteOffset + size - 72, 72);
  const metaStart = Number(footer.readBigUInt64LE(32));
  const indexStart = Number(footer.readBigUInt64LE(48));
  const regions: Region[] = [
    { name: "header", start: 0, end: 16, weight: 2 },
    { name: "footer", start: size - 72, end: size, weight: 20 },
  ];
  // Index records: 38 + name_len each, in the order added.
  let at = indexStart;
  for (const e of raw) {
    const len = 38 + Buffer.byteLength(e.name);
    regions.push({ name: `index:${e.name}`, start: at, end: at + len, weight: 30 / raw.length, owner: e.name });
    if (e.flags & 1)
      regions.push({ name: `index-external:${e.name}`, start: at, end: at + len, weight: 6, owner: e.name });
    at += len;
    if (e.meta_length > 0)
      regions.push({
        name: `meta:${e.name}`,
        start: e.meta_offset,
        end: e.meta_offset + e.meta_length,
        weight: 20 / raw.length,
        owner: e.name,
      });
    if (e.data_length > 0 && !(e.flags & 1))
      regions.push({
        name: `data:${e.name}`,
        start: e.data_offset,
        end: e.data_offset + e.data_length,
        weight: 15 / raw.length,
        owner: e.name,
      });
  }
  expect(raw.length === 0 || metaStart <= indexStart).toBe(true);
  return {
    label: `v1-${name}`,
    version: 1,
    bytes,
    truth,
    regions: regions.filter((r) => r.end > r.start),
    sample: name === "c_many" ? 6 : 100,
    ...(externalBody ? { externalBody } : {}),
    ...(archiveKey ? { archiveKey } : {}),
    verifyShare: name === "c_many" ? 0.25 : 1,
  };
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

interface Mutation {
  kind: "flip" | "multiflip" | "truncate" | "append" | "chop";
  /** Flipped offsets and their XOR masks (flip kinds). */
  flips?: { at: number; mask: number; region: string }[];
  keep?: number; // truncate: bytes kept
  garbage?: number; // append: bytes appended
  chop?: number; // chop: bytes dropped from the head
  tailSize: number;
  /** Where the garbage comes from. */
  garbageSeed?: number;
}

function describeMutation(m: Mutation): string {
  const parts = [`kind=${m.kind}`, `tailSize=${m.tailSize}`];
  if (m.flips) parts.push(`flips=${m.flips.map((f) => `${f.at}^0x${f.mask.toString(16)}(${f.region})`).join(",")}`);
  if (m.keep !== undefined) parts.push(`keep=${m.keep}`);
  if (m.garbage !== undefined) parts.push(`append=${m.garbage}(seed ${m.garbageSeed})`);
  if (m.chop !== undefined) parts.push(`chop=${m.chop}`);
  return parts.join(" ");
}

function pickTail(p: Prng): number {
  return p.pick([256, 512, 4096, 65536, p.int(256, 70_000)]);
}

function regionOf(base: Base, at: number): string {
  // Prefer the most specific (owned) region.
  let best: Region | undefined;
  for (const r of base.regions) if (at >= r.start && at < r.end && (!best || (r.owner && !best.owner))) best = r;
  return best?.name ?? "other";
}

function pickOffset(p: Prng, base: Base): number {
  const total = base.regions.reduce((s, r) => s + r.weight, 0);
  let x = p.next() * total;
  for (const r of base.regions) {
    x -= r.weight;
    if (x <= 0) return p.int(r.start, r.end - 1);
  }
  return p.int(0, base.bytes.length - 1);
}

function flipAt(base: Base, at: number, mask: number): { at: number; mask: number; region: string } {
  return { at, mask, region: regionOf(base, at) };
}

function buildSource(base: Base, m: Mutation): GuardedSource {
  const b = base.bytes;
  switch (m.kind) {
    case "flip":
    case "multiflip": {
      const patches = new Map<number, number>();
      for (const f of m.flips!) patches.set(f.at, (patches.get(f.at) ?? b[f.at]!) ^ f.mask);
      // Two flips of one byte may cancel; drop patches that restore the original byte.
      for (const [at, v] of [...patches]) if (v === b[at]) patches.delete(at);
      return new GuardedSource(b, patches);
    }
    case "truncate":
      return new GuardedSource(b.subarray(0, m.keep!));
    case "append":
      return new GuardedSource(b, new Map(), new Prng(m.garbageSeed!).bytes(m.garbage!));
    case "chop":
      return new GuardedSource(b.subarray(m.chop!));
  }
}

/** The offsets whose bytes actually differ from the original (flip kinds). */
function changedOffsets(m: Mutation): number[] {
  if (!m.flips) return [];
  const net = new Map<number, number>();
  for (const f of m.flips) net.set(f.at, (net.get(f.at) ?? 0) ^ f.mask);
  return [...net].filter(([, mask]) => mask !== 0).map(([at]) => at);
}

function planCases(base: Base): Mutation[] {
  const p = rng(base.label, 2);
  const size = base.bytes.length;
  const out: Mutation[] = [];
  const mask = (): number => p.int(1, 255);
  const small = size <= 1024;
  // Bytes flipped one by one, exhaustively: the structure (header, footer, root, small page sets, the external
  // entry's v1 record, small meta); the bulk (data, big indexes) is sampled by region weight.
  const pagesLen = base.regions.filter((r) => r.name === "pages").reduce((t, r) => t + r.end - r.start, 0);
  const metaLen = base.regions.filter((r) => r.name.startsWith("meta:")).reduce((t, r) => t + r.end - r.start, 0);
  const exhaustive = base.regions.filter(
    (r) =>
      r.name.startsWith("header") ||
      r.name === "footer" ||
      r.name === "root" ||
      r.name.startsWith("index-external") ||
      (r.name === "pages" && pagesLen <= 6000) ||
      (r.name.startsWith("meta:") && metaLen <= 1000),
  );

  // Single flips: every byte of small archives; elsewhere every byte of the
  // structural regions (header, footer, root; the external record) plus weighted samples.
  if (small) {
    for (let at = 0; at < size; at++) {
      out.push({ kind: "flip", flips: [flipAt(base, at, mask())], tailSize: pickTail(p) });
      out.push({ kind: "flip", flips: [flipAt(base, at, 1 << p.int(0, 7))], tailSize: pickTail(p) });
    }
  } else {
    for (const r of exhaustive) {
      for (let at = r.start; at < r.end; at++)
        out.push({ kind: "flip", flips: [flipAt(base, at, mask())], tailSize: pickTail(p) });
    }
    const samples = base.label === "v1-c_many" ? n(650) : base.label === "v2-multipage" ? n(1100) : n(700);
    for (let i = 0; i < samples; i++)
      out.push({
        kind: "flip",
        flips: [flipAt(base, pickOffset(p, base), p.chance(0.5) ? mask() : 1 << p.int(0, 7))],
        tailSize: pickTail(p),
      });
  }
  // Multi-byte flips: scattered, or a burst inside one 16-byte window.
  for (let i = 0; i < n(small ? 120 : 150); i++) {
    const k = p.int(2, 8);
    const flips: { at: number; mask: number; region: string }[] = [];
    const burst = p.chance(0.5);
    const first = pickOffset(p, base);
    for (let j = 0; j < k; j++) {
      const at = burst ? Math.min(size - 1, first + p.int(0, 15)) : pickOffset(p, base);
      flips.push(flipAt(base, at, mask()));
    }
    out.push({ kind: "multiflip", flips, tailSize: pickTail(p) });
  }
  // Truncations: every length of small archives, else near the end, near the start and random.
  if (small) for (let keep = 0; keep < size; keep++) out.push({ kind: "truncate", keep, tailSize: pickTail(p) });
  else {
    for (let i = 1; i <= n(30); i++) out.push({ kind: "truncate", keep: size - p.int(1, 300), tailSize: pickTail(p) });
    for (let i = 0; i < n(20); i++) out.push({ kind: "truncate", keep: p.int(0, size - 1), tailSize: pickTail(p) });
  }
  for (let i = 0; i < n(30); i++)
    out.push({
      kind: "append",
      garbage: p.chance(0.3) ? p.int(1, 8) : p.int(1, 400),
      garbageSeed: p.int(0, 2 ** 31),
      tailSize: pickTail(p),
    });
  for (let i = 0; i < n(30); i++)
    out.push({ kind: "chop", chop: p.chance(0.5) ? p.int(1, 16) : p.int(1, size - 1), tailSize: pickTail(p) });
  return out;
}

// ---------------------------------------------------------------------------
// Running one case
// ---------------------------------------------------------------------------

const V2_CODES: ReadonlySet<DesErrorCode> = new Set(["DES_FORMAT", "DES_CHECKSUM", "DES_UNSUPPORTED"]);

interface Tally {
  cases: number;
  opened: number;
  verifyOk: number;
  codes: Map<string, number>;
  ms: number;
  /** v2: single flips inside one entry's data/meta checked as "that entry fails, the others read". */
  ownerChecks: number;
  /** Reads that succeeded on a damaged archive (v2: each equal to the original). */
  goodReads: number;
  /** v1: external entries that returned the store's object. */
  externalServed: number;
}

class CaseFailure extends Error {}

async function runCase(base: Base, m: Mutation, index: number, tally: Tally): Promise<void> {
  const where = `[seed=${SEED} ${base.label} case #${index}: ${describeMutation(m)}]`;
  const fail: (msg: string) => never = (msg) => {
    throw new CaseFailure(`${where} ${msg}`);
  };
  const src = buildSource(base, m);
  const changed = changedOffsets(m);
  const p = rng(`${base.label}-ops`, index);
  const useStore = base.externalBody !== undefined && p.chance(0.6);
  const store = useStore ? new MemoryStore(new Map([[base.externalBody!.key, base.externalBody!.bytes]])) : undefined;
  const truth = base.truth;
  const v2 = base.version === 2;
  // v2: may the archive legitimately read as intact? Only when nothing but reserved header bytes changed.
  const onlyReservedHeader =
    m.kind !== "truncate" &&
    m.kind !== "append" &&
    m.kind !== "chop" &&
    changed.length > 0 &&
    changed.every((at) => at >= 9 && at < 16);
  const onlyHeader =
    changed.length > 0 && changed.every((at) => at < 16) && (m.kind === "flip" || m.kind === "multiflip");

  const note = (e: DesError): void => {
    tally.codes.set(e.code, (tally.codes.get(e.code) ?? 0) + 1);
  };
  async function attempt<T>(
    what: string,
    fn: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: DesError }> {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      if (!isTypedDesError(e)) return fail(`${what} threw a foreign error: ${describeError(e)}`);
      if (v2 && !V2_CODES.has(e.code))
        fail(
          `${what} failed with ${e.code} (a damaged v2 archive should give FORMAT/CHECKSUM/UNSUPPORTED): ${e.message}`,
        );
      note(e);
      return { ok: false, error: e };
    }
  }

  const opened = await attempt("open", () =>
    DesReader.open(src, {
      tailSize: m.tailSize,
      // Coalescing across damaged ranges and serial reads must not change what is detected.
      ...p.pick([{}, { maxGap: 1 << 20, maxSpan: 1 << 22 }, { concurrency: 1 }, { maxGap: 0, concurrency: 2 }]),
      ...(store ? { externalStore: store } : {}),
      ...(base.archiveKey ? { archiveKey: base.archiveKey } : {}),
    }),
  );
  const checkGuard = (): void => {
    if (src.violations.length > 0)
      fail(`the reader asked its source for bad ranges: ${src.violations.slice(0, 3).join("; ")}`);
  };
  if (!opened.ok) {
    checkGuard();
    if (v2 && onlyHeader)
      fail(
        `open failed although only header bytes changed (the header is not needed to open): ${opened.error.message}`,
      );
    return;
  }
  tally.opened++;
  const reader = opened.value;

  // Which names to exercise: all, or a sample plus the owners of the damaged bytes.
  let names = truth.names;
  if (names.length > base.sample) {
    const pick = new Set<string>();
    for (let i = 0; i < base.sample; i++) pick.add(p.pick(truth.names));
    for (const at of changed) {
      for (const r of base.regions) if (r.owner && at >= r.start && at < r.end) pick.add(r.owner);
    }
    if (base.externalBody) pick.add(base.externalBody.name);
    names = [...pick];
  }
  const missingName = "no such entry \u{1F47B}";

  /** v1: what a successful read of `name` must be, given the damaged archive's own record. */
  const checkV1Bytes = async (what: string, name: string, got: Uint8Array): Promise<void> => {
    const st = await attempt(`stat(${name}) after ${what}`, () => reader.stat(name));
    if (!st.ok) return;
    if (st.value.external) {
      if (!store) fail(`${what}: external entry ${JSON.stringify(name)} returned bytes without an external store`);
      if (!bytesEqual(got, base.externalBody!.bytes))
        fail(`${what}: external entry ${JSON.stringify(name)} returned ${hex(got)}, not the external object`);
      tally.externalServed++;
      return;
    }
    const want = src.peek(st.value.offset, st.value.size);
    if (!want || !bytesEqual(got, want))
      fail(
        `${what}: ${JSON.stringify(name)} returned ${hex(got)}, not the archive bytes at ${st.value.offset}+${st.value.size}`,
      );
  };

  const checkBytes = async (what: string, name: string, got: Uint8Array): Promise<void> => {
    tally.goodReads++;
    if (v2) {
      const want = truth.data.get(name);
      if (!want) fail(`${what}: ${JSON.stringify(name)} is not an entry of the original, yet reads succeeded`);
      if (!bytesEqual(got, want!))
        fail(`${what}: ${JSON.stringify(name)} came back as ${hex(got)} instead of ${hex(want!)} WITHOUT an error`);
    } else {
      await checkV1Bytes(what, name, got);
    }
  };

  const list = await attempt("list", () => reader.list());
  if (list.ok && v2 && JSON.stringify(list.value) !== JSON.stringify(truth.names))
    fail(`list() differs from the original without an error: ${JSON.stringify(list.value.slice(0, 5))}`);

  for (const name of [...names, missingName]) {
    const has = await attempt(`has(${name})`, () => reader.has(name));
    if (has.ok && v2 && has.value !== truth.data.has(name))
      fail(`has(${JSON.stringify(name)}) = ${has.value} without an error`);
  }
  for (const name of names) {
    const st = await attempt(`stat(${name})`, () => reader.stat(name));
    if (st.ok && v2 && statKey(st.value) !== statKey(truth.stat.get(name)!))
      fail(`stat(${JSON.stringify(name)}) = ${statKey(st.value)} instead of ${statKey(truth.stat.get(name)!)}`);

    const got = await attempt(`get(${name})`, () => reader.get(name));
    if (got.ok) await checkBytes("get", name, got.value);

    const meta = await attempt(`getMeta(${name})`, () => reader.getMeta(name));
    if (meta.ok && v2 && canon(meta.value) !== truth.meta.get(name))
      fail(
        `getMeta(${JSON.stringify(name)}) = ${canon(meta.value).slice(0, 200)} instead of ${truth.meta.get(name)!.slice(0, 200)} WITHOUT an error`,
      );
  }
  // Streams: one or two names per case (all for the small archives every few cases).
  for (const name of names.length <= 3 || p.chance(0.3) ? names : [p.pick(names), p.pick(names)]) {
    const streamed = await attempt(`stream(${name})`, () => collect(reader.stream(name)));
    if (streamed.ok) await checkBytes("stream", name, streamed.value);
  }
  const many = await attempt("getMany", () => reader.getMany(names));
  if (many.ok) for (const [name, b] of many.value) await checkBytes("getMany", name, b);
  const metas = await attempt("getMetaMany", () => reader.getMetaMany(names, { missing: "skip" }));
  if (metas.ok && v2) {
    for (const [name, v] of metas.value)
      if (canon(v) !== truth.meta.get(name))
        fail(`getMetaMany: ${JSON.stringify(name)} = ${canon(v).slice(0, 200)} WITHOUT an error`);
  }

  if (p.next() < base.verifyShare) {
    const rep = await attempt("verify", () => reader.verify());
    let report: VerifyReport | undefined;
    if (rep.ok) report = rep.value;
    else fail(`verify() threw instead of reporting: ${rep.error.code} ${rep.error.message}`);
    if (report!.ok) tally.verifyOk++;
    if (v2) {
      // Any damage outside the 7 reserved header bytes is detected by verify().
      if (report!.ok && !onlyReservedHeader)
        fail(`verify() says ok although bytes changed at ${changed.join(",") || "(size change)"}`);
      if (!report!.ok && onlyReservedHeader)
        fail(`verify() failed for a change in reserved header bytes only: ${JSON.stringify(report!.problems)}`);
    }
    for (const pr of report!.problems) {
      if (!DES_CODE_SET.has(pr.code)) fail(`verify() reports an undocumented code ${pr.code}: ${pr.message}`);
    }
  }

  // A damaged byte in one entry's data or meta must not break the others (v2, single flips).
  if (v2 && m.kind === "flip") {
    const at = changed[0]!;
    const owner = base.regions.find((r) => r.owner && at >= r.start && at < r.end);
    if (owner) {
      tally.ownerChecks++;
      const isData = owner.name.startsWith("data:");
      for (const name of names) {
        if (name === owner.owner) {
          const r = isData
            ? await attempt("get(owner)", () => reader.get(name))
            : await attempt("getMeta(owner)", () => reader.getMeta(name));
          if (r.ok) fail(`${owner.name}: the damaged ${isData ? "data" : "meta"} was returned without an error`);
          if (r.error.code !== "DES_CHECKSUM")
            fail(`${owner.name}: damage reported as ${r.error.code}, expected DES_CHECKSUM`);
        } else {
          const g = await attempt(`get(${name}) beside damage`, () => reader.get(name));
          if (!g.ok)
            fail(`get(${JSON.stringify(name)}) failed (${g.error.message}) although only ${owner.name} was damaged`);
          const mm = await attempt(`getMeta(${name}) beside damage`, () => reader.getMeta(name));
          if (!mm.ok)
            fail(
              `getMeta(${JSON.stringify(name)}) failed (${mm.error.message}) although only ${owner.name} was damaged`,
            );
        }
      }
    }
  }
  if (v2 && onlyReservedHeader) {
    // Reserved bytes are ignored: everything reads as the original.
    for (const name of names) {
      const g = await attempt(`get(${name})`, () => reader.get(name));
      if (!g.ok) fail(`get(${JSON.stringify(name)}) failed after a reserved-header flip: ${g.error.message}`);
    }
  }
  await reader.close();
  checkGuard();
}

async function fuzz(base: Base): Promise<Tally> {
  stray.length = 0;
  const cases = planCases(base);
  const tally: Tally = {
    cases: 0,
    opened: 0,
    verifyOk: 0,
    codes: new Map(),
    ms: 0,
    ownerChecks: 0,
    goodReads: 0,
    externalServed: 0,
  };
  const failures: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < cases.length; i++) {
    const m = cases[i]!;
    currentCase = `${base.label} case #${i} (${describeMutation(m)})`;
    try {
      await withTimeout(
        runCase(base, m, i, tally),
        CASE_TIMEOUT_MS,
        `[seed=${SEED} ${base.label} case #${i}: ${describeMutation(m)}] (a hang)`,
      );
    } catch (e) {
      failures.push(
        e instanceof CaseFailure || e instanceof TimeoutError
          ? e.message
          : `[seed=${SEED} ${base.label} case #${i}: ${describeMutation(m)}] ${describeError(e)}`,
      );
      if (failures.length >= MAX_REPORTED_FAILURES) break;
    }
    tally.cases++;
    if (i % 64 === 63) await new Promise((r) => setImmediate(r)); // let stray rejections surface near their case
    if (stray.length > 0) break;
  }
  await new Promise((r) => setImmediate(r));
  tally.ms = Math.round(performance.now() - t0);
  console.log(
    `${base.label} (seed ${SEED}): ${tally.cases} cases, ${tally.opened} opened, ${tally.goodReads} good reads, verify ok ${tally.verifyOk}, ` +
      `owner checks ${tally.ownerChecks}, external served ${tally.externalServed}, ${tally.ms} ms, errors ${JSON.stringify(Object.fromEntries(tally.codes))}`,
  );
  expect(stray, "unhandled rejections / uncaught exceptions").toEqual([]);
  expect(failures, `seed ${SEED}`).toEqual([]);
  return tally;
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

describe("corruption fuzz", () => {
  it("the guard itself catches a range past the end and an oversized read", async () => {
    const g = new GuardedSource(new Uint8Array(10), new Map([[3, 7]]), new Uint8Array([1, 2]));
    expect([...(await g.read(2, 3))]).toEqual([0, 7, 0]);
    expect([...(await g.read(9, 3))]).toEqual([0, 1, 2]);
    await expect(g.read(11, 2)).rejects.toBeInstanceOf(DesError);
    await expect(g.read(0, 13)).rejects.toBeInstanceOf(DesError);
    await expect(g.read(-1, 1)).rejects.toBeInstanceOf(DesError);
    expect(g.violations).toHaveLength(3);
    expect((await g.readTail(1 << 20)).bytes).toHaveLength(12);
  });

  describe("v2", () => {
    for (const kind of ["plain", "compressed", "multipage", "empty"] as const) {
      it(`v2 ${kind}: damage is always an error or the original, never wrong data`, async () => {
        const base = await v2Base(kind);
        const tally = await fuzz(base);
        expect(tally.cases).toBeGreaterThan(100);
        if (kind !== "empty") {
          expect(tally.ownerChecks, "single flips inside entries were exercised").toBeGreaterThan(50);
          expect(tally.goodReads, "some reads succeed beside the damage").toBeGreaterThan(100);
        }
      });
    }
  });

  describe.skipIf(!vectorsPresent())("v1 vectors", () => {
    for (const name of ["a_small", "b_empty", "c_many"] as const) {
      it(`v1 ${name}: damage never crashes, hangs, over-reads or returns archive bytes for an external entry`, async () => {
        const base = await v1Base(name);
        const tally = await fuzz(base);
        expect(tally.cases).toBeGreaterThan(100);
        if (name === "c_many")
          expect(tally.externalServed, "the external entry was read through the store").toBeGreaterThan(10);
      });
    }
  });
});

// ---------------------------------------------------------------------------
// Hostile but checksummed v2 archives
//
// Checksums stop accidents, not a writer that lies. These archives are built
// here, from the spec (section 3), with every checksum valid and the fields
// chosen to be inconsistent: codecs and flags a reader must refuse, sizes that
// do not match the stored bytes, ranges that overlap or leave the archive,
// meta that is not MessagePack. Rules: typed errors only, no hang, no bad
// source range; what a read returns agrees with the record (length = size,
// uncompressed bytes = the stored range, compressed = zlib's own inflation);
// stream agrees with get; verify() never throws and never says ok when a
// read of the same entry fails.
// ---------------------------------------------------------------------------

class SpecWriter {
  private readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.out.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint | number): this {
    let x = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      this.out.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this;
  }
  varint(v: number): this {
    let x = BigInt(v);
    while (x >= 0x80n) {
      this.out.push(Number((x & 0x7fn) | 0x80n));
      x >>= 7n;
    }
    this.out.push(Number(x));
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  get length(): number {
    return this.out.length;
  }
  finish(): Uint8Array {
    return new Uint8Array(this.out);
  }
}

interface HostileRecord {
  name: Uint8Array;
  flags: number;
  codec: number;
  size: number;
  storedLen: number;
  dataOffset: number;
  dataHash: bigint;
  externalKey: Uint8Array;
  metaLen: number;
  metaOffset: number;
  metaHash: bigint;
}

/** Section 3.5, field by field. */
function encodeSpecRecord(w: SpecWriter, r: HostileRecord): void {
  w.varint(r.name.length).bytes(r.name).varint(r.flags);
  if (r.flags & 0x08) return;
  if (r.flags & 0x02) w.u8(r.codec).varint(r.size);
  w.varint(r.storedLen);
  const external = (r.flags & 0x01) !== 0;
  if (!external && r.storedLen > 0) w.varint(r.dataOffset);
  if (external) w.varint(r.externalKey.length).bytes(r.externalKey);
  if (r.storedLen > 0) w.u64(r.dataHash);
  w.varint(r.metaLen);
  if (r.metaLen > 0) w.varint(r.metaOffset).u64(r.metaHash);
}

function pageOfName(name: Uint8Array, bits: number): number {
  return bits === 0 ? 0 : Number(xxh64(name) >> BigInt(64 - bits));
}

interface HostileArchive {
  bytes: Uint8Array;
  records: HostileRecord[];
  store: Map<string, Uint8Array>;
  describe: string;
}

const msgpack = new MsgpackEncoder({ useBigInt64: true });

function hostileArchive(p: Prng): HostileArchive {
  const notes: string[] = [];
  // DATA: chunks of every kind a liar could store.
  const text = (len: number): Uint8Array => textBody(p, len);
  const chunkMakers: (() => Uint8Array)[] = [
    () => p.bytes(p.int(1, 300)),
    () => new Uint8Array(zlib.gzipSync(text(p.int(0, 2000)))),
    () => new Uint8Array(zlib.brotliCompressSync(text(p.int(0, 2000)))),
    () => new Uint8Array(zlib.gzipSync(new Uint8Array(p.int(50_000, 300_000)))), // inflates ~1000x
    () => new Uint8Array(Buffer.concat([zlib.gzipSync(text(100)), p.bytes(p.int(1, 5))])), // trailing garbage
    () => new Uint8Array(zlib.gzipSync(text(500)).subarray(0, p.int(1, 60))), // cut short
    () => new Uint8Array(zlib.deflateRawSync(text(300))), // not gzip at all
    () => new Uint8Array(Buffer.concat([zlib.gzipSync(text(50)), zlib.gzipSync(text(70))])), // two members
  ];
  const data: { offset: number; bytes: Uint8Array }[] = [];
  let at = 16;
  for (let i = p.int(0, 6); i > 0; i--) {
    const b = p.pick(chunkMakers)();
    data.push({ offset: at, bytes: b });
    at += b.length;
  }
  const metaStart = at;
  const metaMakers: (() => Uint8Array)[] = [
    () => msgpack.encode({ a: 1, s: "x", big: 2n ** 63n, bin: p.bytes(3), arr: [null, true, 1.5] }),
    () => msgpack.encode(p.int(-1000, 1000)),
    () => msgpack.encode("meta"),
    () => p.bytes(p.int(1, 40)),
    () => new Uint8Array([0x81, 0xa9, ...Buffer.from("__proto__"), 0x01]), // refused key
    () => new Uint8Array([0x81, 0xc3, 0x01]), // boolean map key
    () => new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]), // str32 claiming 4 GiB
    () => new Uint8Array([0xdd, 0x7f, 0xff, 0xff, 0xff]), // array32 claiming 2^31 items
    () => new Uint8Array([0xc7, 0x03, 0x05, 1, 2, 3]), // unknown ext type
    () => new Uint8Array([0x01, 0x02]), // extra bytes after a value
    () => new Uint8Array(Array.from({ length: 5000 }, () => 0x91)), // 5000 nested arrays, never closed
  ];
  const metas: { offset: number; bytes: Uint8Array }[] = [];
  for (let i = p.int(0, 5); i > 0; i--) {
    const b = p.pick(metaMakers)();
    metas.push({ offset: at, bytes: b });
    at += b.length;
  }
  const indexStart = at;
  const body = new Uint8Array(indexStart);
  body.set(Buffer.from("DESHEAD1"), 0);
  body[8] = 2;
  for (const c of [...data, ...metas]) body.set(c.bytes, c.offset);
  const rangeHash = (off: number, len: number): bigint =>
    off >= 0 && off + len <= indexStart ? xxh64(body.subarray(off, off + len)) : BigInt(p.int(0, 2 ** 31));

  // Records.
  const store = new Map<string, Uint8Array>();
  const records: HostileRecord[] = [];
  const usedNames = new Set<string>();
  const flagChoices = [0, 0, 0, 0x02, 0x02, 0x02, 0x01, 0x03, 0x08, 0x04, 0x10, 0x40, 0x02 | 0x08, 0x100];
  for (let i = p.int(0, 10); i > 0; i--) {
    let name: Uint8Array;
    const kind = p.int(0, 19);
    if (kind === 0)
      name = new Uint8Array([0xc3, 0x28]); // invalid UTF-8
    else if (kind === 1)
      name = new Uint8Array([0x61, 0x00, 0x62]); // NUL inside
    else
      name = new Uint8Array(
        Buffer.from(`${p.pick(["a", "b/", "żółw", "🦀", "x".repeat(p.int(1, 30))])}${p.int(0, 50)}`),
      );
    const key = Buffer.from(name).toString("hex");
    if (usedNames.has(key) && !p.chance(0.1)) continue; // sometimes a duplicate
    usedNames.add(key);
    const flags = p.pick(flagChoices);
    const codec = p.pick([1, 2, 1, 2, 0, 3, 255]);
    let dataOffset = 0;
    let storedLen = 0;
    if (data.length > 0 && p.chance(0.8)) {
      const c = p.pick(data);
      dataOffset = c.offset;
      storedLen = c.bytes.length;
    } else if (p.chance(0.5)) {
      dataOffset = p.pick([0, 8, 15, 16, p.int(0, indexStart + 40), indexStart, 2 ** 40]);
      storedLen = p.pick([0, 1, p.int(0, 500), indexStart, 2 ** 40, 2 ** 53 - 1]);
    }
    let size = storedLen;
    if (flags & 0x02) {
      let inflated: number | undefined;
      try {
        const stored = body.subarray(dataOffset, dataOffset + storedLen);
        inflated = (codec === 2 ? zlib.brotliDecompressSync(stored) : zlib.gunzipSync(stored)).length;
      } catch {
        inflated = undefined;
      }
      size =
        p.chance(0.6) && inflated !== undefined
          ? inflated
          : p.pick([0, 1, storedLen, storedLen + 1, (inflated ?? 10) - 1, 2 ** 31, 2 ** 53 - 1]);
      size = Math.max(0, size);
    }
    const externalKey = new Uint8Array(Buffer.from(p.pick(["ext/a", "ext/b", "../escape", "", "ext/🦀"])));
    if (flags & 0x01) {
      const k = Buffer.from(externalKey).toString("utf8");
      if (!store.has(k) && p.chance(0.8))
        store.set(k, p.chance(0.7) ? p.bytes(Math.min(storedLen, 5000)) : p.bytes(p.int(0, 50)));
    }
    let metaOffset = 0;
    let metaLen = 0;
    if (metas.length > 0 && p.chance(0.7)) {
      const m = p.pick(metas);
      metaOffset = m.offset;
      metaLen = m.bytes.length;
    } else if (p.chance(0.2)) {
      metaOffset = p.pick([0, 15, 16, p.int(0, indexStart + 10)]);
      metaLen = p.pick([1, p.int(1, 100), 2 ** 40]);
    }
    records.push({
      name,
      flags,
      codec,
      size,
      storedLen,
      dataOffset,
      dataHash: p.chance(0.9) ? rangeHash(dataOffset, storedLen) : BigInt(p.int(0, 2 ** 31)),
      externalKey,
      metaLen,
      metaOffset,
      metaHash: p.chance(0.9) ? rangeHash(metaOffset, metaLen) : BigInt(p.int(0, 2 ** 31)),
    });
  }

  // Pages (sorted, hashed to their page, unless we lie about that too), root, footer.
  const pageBits = p.pick([0, 0, 1, 2]);
  const P = 2 ** pageBits;
  const pages: HostileRecord[][] = Array.from({ length: P }, () => []);
  for (const r of records) {
    let pg = pageOfName(r.name, pageBits);
    if (P > 1 && p.chance(0.03)) {
      pg = (pg + 1) % P;
      notes.push("misplaced record");
    }
    pages[pg]!.push(r);
  }
  const index = new SpecWriter();
  const lengths: number[] = [];
  for (const pg of pages) {
    pg.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    if (pg.length > 1 && p.chance(0.03)) {
      [pg[0], pg[1]] = [pg[1]!, pg[0]!];
      notes.push("unsorted page");
    }
    const w = new SpecWriter().u32(p.chance(0.02) ? pg.length + 1 : pg.length);
    for (const r of pg) encodeSpecRecord(w, r);
    const pageBody = w.finish();
    const page = new SpecWriter().bytes(pageBody).u64(xxh64(pageBody)).finish();
    lengths.push(page.length);
    index.bytes(page);
  }
  const root = new SpecWriter();
  for (const l of lengths) root.u32(l);
  const rootBytes = root.finish();
  index.bytes(rootBytes);
  const indexBytes = index.finish();
  const archiveLength = indexStart + indexBytes.length + 128;
  const footer = new SpecWriter()
    .bytes(Buffer.from("DESFOOT1"))
    .u8(2)
    .u8(pageBits)
    .u8(0)
    .u8(0)
    .u32(p.chance(0.03) ? 1 << p.int(0, 31) : 0)
    .u64(16)
    .u64(metaStart - 16)
    .u64(metaStart)
    .u64(indexStart - metaStart)
    .u64(indexStart)
    .u64(indexBytes.length)
    .u64(p.chance(0.05) ? p.int(0, 1000) : records.length)
    .u64(p.chance(0.05) ? p.int(0, 100) : 0)
    .u64(archiveLength)
    .u64(xxh64(rootBytes));
  for (let i = 0; i < 24; i++) footer.u8(0);
  const footerBody = footer.finish();
  const footerBytes = new SpecWriter().bytes(footerBody).u64(xxh64(footerBody)).finish();
  const bytes = new Uint8Array(Buffer.concat([body, indexBytes, footerBytes]));
  const describe = `${records.length} records, page_bits ${pageBits}, ${data.length} data chunks, ${metas.length} meta chunks${notes.length ? `, ${notes.join(", ")}` : ""}; records: ${records
    .map(
      (r) =>
        `${Buffer.from(r.name).toString("hex")}{f=0x${r.flags.toString(16)} c=${r.codec} size=${r.size} stored=${r.storedLen}@${r.dataOffset} meta=${r.metaLen}@${r.metaOffset}}`,
    )
    .join(" ")}`;
  return { bytes, records, store, describe };
}

/** What zlib itself makes of stored bytes (undefined when it refuses them). */
function zlibInflate(codec: "gzip" | "brotli", stored: Uint8Array): Uint8Array | undefined {
  try {
    return new Uint8Array(codec === "gzip" ? zlib.gunzipSync(stored) : zlib.brotliDecompressSync(stored));
  } catch {
    return undefined;
  }
}

async function runHostileCase(index: number, tally: Tally): Promise<void> {
  const p = rng("hostile", index);
  const h = hostileArchive(p);
  const where = `[seed=${SEED} hostile case #${index}: ${h.describe}]`;
  const fail: (msg: string) => never = (msg) => {
    throw new CaseFailure(`${where} ${msg}`);
  };
  const src = new GuardedSource(h.bytes);
  const withStore = p.chance(0.7);
  const store = new MemoryStore(h.store);
  async function attempt<T>(
    what: string,
    fn: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: DesError }> {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      if (!isTypedDesError(e)) return fail(`${what} threw a foreign error: ${describeError(e)}`);
      tally.codes.set(e.code, (tally.codes.get(e.code) ?? 0) + 1);
      return { ok: false, error: e };
    }
  }
  const opened = await attempt("open", () =>
    DesReader.open(src, { tailSize: p.pick([256, 1024, 65536]), ...(withStore ? { externalStore: store } : {}) }),
  );
  const guard = (): void => {
    if (src.violations.length > 0) fail(`bad source ranges: ${src.violations.slice(0, 3).join("; ")}`);
  };
  if (!opened.ok) return guard();
  tally.opened++;
  const reader = opened.value;
  const list = await attempt("list", () => reader.list());
  const names = new Set<string>();
  for (const r of h.records) {
    try {
      names.add(new TextDecoder("utf-8", { fatal: true }).decode(r.name));
    } catch {
      // not a name a caller can ask for
    }
  }
  if (list.ok) {
    const sorted = [...list.value].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (JSON.stringify(sorted) !== JSON.stringify(list.value))
      fail(`list() is not sorted: ${JSON.stringify(list.value)}`);
    if (new Set(list.value).size !== list.value.length) fail(`list() repeats a name: ${JSON.stringify(list.value)}`);
    for (const nm of list.value) names.add(nm);
  }
  const failedReads = new Set<string>();
  for (const name of names) {
    const has = await attempt(`has(${name})`, () => reader.has(name));
    if (has.ok && list.ok && has.value !== list.value.includes(name))
      fail(`has(${JSON.stringify(name)}) = ${has.value} but list() ${list.value.includes(name) ? "has" : "lacks"} it`);
    const st = await attempt(`stat(${name})`, () => reader.stat(name));
    const got = await attempt(`get(${name})`, () => reader.get(name));
    const streamed = await attempt(`stream(${name})`, () => collect(reader.stream(name)));
    const meta = await attempt(`getMeta(${name})`, () => reader.getMeta(name));
    if (got.ok && !st.ok) fail(`get(${JSON.stringify(name)}) succeeded but stat failed: ${st.error.message}`);
    if (st.ok) {
      const s = st.value;
      for (const [what, r] of [
        ["get", got],
        ["stream", streamed],
      ] as const) {
        if (!r.ok) continue;
        const b = r.value;
        if (b.length !== s.size)
          fail(
            `${what}(${JSON.stringify(name)}) returned ${b.length} bytes, stat says size ${s.size} (${JSON.stringify(s)})`,
          );
        if (s.size === 0 && s.storedSize === 0) {
          // An entry with nothing stored reads as empty, without I/O (spec 3.9); b.length === 0 was checked above.
        } else if (s.external) {
          // The bytes come from the store's object under the recorded key, never from the archive.
          const body = h.store.get(s.externalKey ?? "");
          if (!withStore || !body)
            fail(`${what}(${JSON.stringify(name)}): external entry returned bytes that no store holds`);
          const want =
            s.compression === "none"
              ? body!
              : s.compression === "unknown"
                ? undefined
                : zlibInflate(s.compression, body!);
          if (!want || !bytesEqual(b, want))
            fail(`${what}(${JSON.stringify(name)}): external bytes differ from the store's object`);
        } else {
          const stored = src.peek(s.offset, s.storedSize);
          if (!stored)
            fail(`${what}(${JSON.stringify(name)}) succeeded for a range outside the archive: ${JSON.stringify(s)}`);
          const want =
            s.compression === "none"
              ? stored
              : s.compression === "unknown"
                ? undefined
                : zlibInflate(s.compression, stored!);
          if (!want || !bytesEqual(b, want))
            fail(
              `${what}(${JSON.stringify(name)}) returned ${hex(b)}, but the record's bytes ${s.compression === "none" ? "are" : "inflate to"} ${want ? hex(want) : "(nothing: zlib refuses them)"} (${JSON.stringify(s)})`,
            );
        }
      }
      if (got.ok && streamed.ok && !bytesEqual(got.value, streamed.value))
        fail(`get and stream disagree for ${JSON.stringify(name)}`);
    }
    if (list.ok && list.value.includes(name)) {
      const external = st.ok && st.value.external;
      const failedCode = (r: { ok: boolean; error?: DesError }): string | undefined =>
        r.ok ? undefined : r.error!.code;
      for (const r of [got, meta]) {
        const code = failedCode(r);
        // An external entry may fail for want of a store object: that is not the archive's fault.
        if (code && !(external && code === "DES_EXTERNAL")) failedReads.add(name);
      }
    }
  }
  // getMany returns what get returns, entry by entry.
  const many = await attempt("getMany", () => reader.getMany([...names], { missing: "skip" }));
  if (many.ok) {
    for (const [nm, b] of many.value) {
      const one = await attempt(`get(${nm}) again`, () => reader.get(nm));
      if (!one.ok) fail(`getMany returned ${JSON.stringify(nm)} but get fails: ${one.error.message}`);
      if (!bytesEqual(one.value, b)) fail(`getMany and get disagree for ${JSON.stringify(nm)}`);
    }
  }
  const rep = await attempt("verify", () => reader.verify());
  if (!rep.ok) fail(`verify() threw instead of reporting: ${rep.error.code} ${rep.error.message}`);
  const report = rep.value;
  if (report.ok && failedReads.size > 0)
    fail(`verify() says ok, but reads of ${JSON.stringify([...failedReads])} fail`);
  if (report.ok) tally.verifyOk++;
  await reader.close();
  guard();
}

describe("hostile but checksummed v2 archives", () => {
  it("never crash, over-read or return bytes that disagree with their record; verify() agrees with reads", async () => {
    await loadHasher();
    stray.length = 0;
    const tally: Tally = {
      cases: 0,
      opened: 0,
      verifyOk: 0,
      codes: new Map(),
      ms: 0,
      ownerChecks: 0,
      goodReads: 0,
      externalServed: 0,
    };
    const failures: string[] = [];
    const t0 = performance.now();
    const count = n(1500);
    for (let i = 0; i < count; i++) {
      currentCase = `hostile case #${i}`;
      try {
        await withTimeout(runHostileCase(i, tally), CASE_TIMEOUT_MS, `[seed=${SEED} hostile case #${i}] (a hang)`);
      } catch (e) {
        failures.push(
          e instanceof CaseFailure || e instanceof TimeoutError
            ? e.message
            : `[seed=${SEED} hostile case #${i}] ${describeError(e)}`,
        );
        if (failures.length >= MAX_REPORTED_FAILURES) break;
      }
      tally.cases++;
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    tally.ms = Math.round(performance.now() - t0);
    console.log(
      `hostile (seed ${SEED}): ${tally.cases} cases, ${tally.opened} opened, verify ok ${tally.verifyOk}, ${tally.ms} ms, errors ${JSON.stringify(Object.fromEntries(tally.codes))}`,
    );
    expect(stray, "unhandled rejections / uncaught exceptions").toEqual([]);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(tally.opened).toBeGreaterThan(count / 2);
    expect(tally.verifyOk).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------
// Regressions found by the fuzzers above, pinned as plain tests
// ---------------------------------------------------------------------------

/** A valid v2 archive (spec section 3) around the given DATA+META bytes and records, one page. */
function craftArchive(body: Uint8Array, records: HostileRecord[]): Uint8Array {
  const head = new Uint8Array(16 + body.length);
  head.set(Buffer.from("DESHEAD1"), 0);
  head[8] = 2;
  head.set(body, 16);
  const sorted = [...records].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const w = new SpecWriter().u32(sorted.length);
  for (const r of sorted) encodeSpecRecord(w, r);
  const pageBody = w.finish();
  const page = new SpecWriter().bytes(pageBody).u64(xxh64(pageBody)).finish();
  const root = new SpecWriter().u32(page.length).finish();
  const indexStart = head.length;
  const indexLength = page.length + root.length;
  const f = new SpecWriter()
    .bytes(Buffer.from("DESFOOT1"))
    .u8(2)
    .u8(0)
    .u8(0)
    .u8(0)
    .u32(0)
    .u64(16)
    .u64(body.length)
    .u64(indexStart)
    .u64(0)
    .u64(indexStart)
    .u64(indexLength)
    .u64(records.length)
    .u64(0)
    .u64(indexStart + indexLength + 128)
    .u64(xxh64(root));
  for (let i = 0; i < 24; i++) f.u8(0);
  const fb = f.finish();
  return new Uint8Array(Buffer.concat([head, page, root, fb, new SpecWriter().u64(xxh64(fb)).finish()]));
}

function rec(name: string, fields: Partial<HostileRecord>): HostileRecord {
  return {
    name: new Uint8Array(Buffer.from(name)),
    flags: 0,
    codec: 0,
    size: 0,
    storedLen: 0,
    dataOffset: 0,
    dataHash: 0n,
    externalKey: new Uint8Array(0),
    metaLen: 0,
    metaOffset: 0,
    metaHash: 0n,
    ...fields,
  };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e;
  }
}

describe("regressions", () => {
  it("stream() of a compressed entry with a damaged stored byte fails with a DesError (it used to hang, the error unhandled)", async () => {
    for (const compress of ["gzip", "brotli"] as const) {
      const data = textBody(new Prng(1), 5000);
      const archive = await buildArchive([{ name: "c", data, compress }]);
      const { offset, storedSize } = await (await DesReader.open(new GuardedSource(archive))).stat("c");
      for (const at of [offset, offset + (storedSize >> 1), offset + storedSize - 1]) {
        stray.length = 0;
        const src = new GuardedSource(archive, new Map([[at, archive[at]! ^ 0x01]]));
        const r = await DesReader.open(src);
        const e = await withTimeout(caught(collect(r.stream("c"))), 5000, `stream ${compress} flip at ${at}`);
        await new Promise((res) => setImmediate(res));
        expect(isTypedDesError(e), `${compress} flip at ${at}: ${describeError(e)}`).toBe(true);
        expect(stray).toEqual([]);
      }
    }
  });

  it("a COMPRESSED record with codec 0 is refused (it used to read as 'none', returning stored_len bytes for a different size)", async () => {
    await loadHasher();
    const body = new Uint8Array([1, 2, 3, 4, 5]);
    const archive = craftArchive(body, [
      rec("x", { flags: 0x02, codec: 0, size: 10, storedLen: 5, dataOffset: 16, dataHash: xxh64(body) }),
    ]);
    const r = await DesReader.open(new GuardedSource(archive));
    expect((await r.stat("x")).compression).toBe("unknown");
    expect(await caught(r.get("x"))).toMatchObject({ code: "DES_UNSUPPORTED" });
    expect(await caught(collect(r.stream("x")))).toMatchObject({ code: "DES_UNSUPPORTED" });
    const report = await r.verify();
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ name: "x", code: "DES_UNSUPPORTED" });
  });

  it("a record with size > 0 and nothing stored is refused (it used to read as empty, shorter than its size), and verify() says so", async () => {
    await loadHasher();
    const archive = craftArchive(new Uint8Array(0), [
      rec("gz", { flags: 0x02, codec: 1, size: 9, storedLen: 0 }),
      rec("ext", { flags: 0x03, codec: 2, size: 1, storedLen: 0, externalKey: new Uint8Array(Buffer.from("k")) }),
      rec("empty", { flags: 0x02, codec: 1, size: 0, storedLen: 0 }),
    ]);
    const store = new MemoryStore(new Map([["k", new Uint8Array(0)]]));
    const r = await DesReader.open(new GuardedSource(archive), { externalStore: store });
    for (const name of ["gz", "ext"]) {
      expect(await caught(r.get(name)), name).toMatchObject({ code: "DES_FORMAT" });
      expect(await caught(collect(r.stream(name))), name).toMatchObject({ code: "DES_FORMAT" });
    }
    expect((await r.get("empty")).length).toBe(0);
    const report = await r.verify();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.name).sort()).toEqual(["ext", "gz"]);
  });
});
