/**
 * Writes the v2 test vectors in this folder: `npx tsx spec/vectors/generate.ts`.
 * Each vector has `archive.des` and `manifest.json` (inputs, expected reads,
 * and the footer fields). test/v2-vectors.test.ts reads them and rebuilds
 * them from their manifests; the bytes must not change unless the spec does.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DesReader, DesWriter, LocalFolderStore, MemorySink, MemorySource } from "../../src/index.js";
import type { Compression } from "../../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));

export interface VectorEntry {
  name: string;
  /** base64 of the body */
  body: string;
  sha256: string;
  /** JSON-safe meta given to add(), or null for none */
  meta: unknown;
  compress: Compression;
  external: boolean;
}

export interface VectorSpec {
  name: string;
  description: string;
  writer: { bigFileThreshold?: number; externalPrefix?: string };
  entries: VectorEntry[];
}

function entry(name: string, body: Uint8Array, meta: unknown, compress: Compression = "none", external = false): VectorEntry {
  return {
    name,
    body: Buffer.from(body).toString("base64"),
    sha256: crypto.createHash("sha256").update(body).digest("hex"),
    meta: meta ?? null,
    compress,
    external,
  };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

export function vectorSpecs(): VectorSpec[] {
  const many: VectorEntry[] = [];
  for (let i = 0; i < 1500; i++) {
    many.push(entry(`archive/2025/${String(i % 12).padStart(2, "0")}/record-${String(i).padStart(5, "0")}-${"x".repeat(i % 40)}.json`, text(`{"n":${i}}`), i % 10 === 0 ? { i } : null));
  }
  return [
    { name: "v2_empty", description: "no entries: header, one empty page, root, footer", writer: {}, entries: [] },
    {
      name: "v2_small",
      description: "four entries: plain with meta, empty, gzip, brotli, one non-ASCII name",
      writer: {},
      entries: [
        entry("hello.txt", text("Hello, DES!\n"), { mime: "text/plain", lang: "en" }),
        entry("empty", new Uint8Array(0), null),
        entry("zażółć.txt", text("Zażółć gęślą jaźń ".repeat(20)), { title: "Zażółć", tags: ["pl", 1, true, null, 2.5] }, "gzip"),
        entry("data/repeat.bin", new Uint8Array(4096).fill(0x61), { n: -7 }, "brotli"),
      ],
    },
    { name: "v2_multipage", description: "1,500 entries whose index spans several pages", writer: {}, entries: many },
    {
      name: "v2_external",
      description: "one internal and one external entry (bigFileThreshold 64, prefix 2025-01-15); the body is in ext/",
      writer: { bigFileThreshold: 64, externalPrefix: "2025-01-15" },
      entries: [entry("small", text("tiny"), null), entry("big.bin", new Uint8Array(200).map((_, i) => i), { kind: "big" }, "none", true)],
    },
  ];
}

/** Builds a vector's archive; external bodies go under `extDir`. */
export async function buildVector(spec: VectorSpec, extDir: string): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = await DesWriter.create(sink, { ...spec.writer, externalStore: new LocalFolderStore(extDir) });
  for (const e of spec.entries) {
    await w.add(e.name, Buffer.from(e.body, "base64"), {
      ...(e.meta !== null ? { meta: e.meta } : {}),
      compress: e.compress,
      external: e.external,
    });
  }
  await w.close();
  return sink.bytes();
}

async function main(): Promise<void> {
  for (const spec of vectorSpecs()) {
    const dir = path.join(here, spec.name);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const bytes = await buildVector(spec, path.join(dir, "ext"));
    fs.writeFileSync(path.join(dir, "archive.des"), bytes);
    const r = await DesReader.open(new MemorySource(bytes));
    const footer = Buffer.from(bytes.subarray(bytes.length - 128));
    const manifest = {
      ...spec,
      archive_size: bytes.length,
      archive_sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
      list: await r.list(),
      footer: {
        page_bits: footer[9],
        data_start: Number(footer.readBigUInt64LE(16)),
        data_length: Number(footer.readBigUInt64LE(24)),
        meta_start: Number(footer.readBigUInt64LE(32)),
        meta_length: Number(footer.readBigUInt64LE(40)),
        index_start: Number(footer.readBigUInt64LE(48)),
        index_length: Number(footer.readBigUInt64LE(56)),
        entry_count: Number(footer.readBigUInt64LE(64)),
        root_xxh64: footer.readBigUInt64LE(88).toString(16).padStart(16, "0"),
        footer_xxh64: footer.readBigUInt64LE(120).toString(16).padStart(16, "0"),
      },
      // stat() of the first entries added, to pin record decoding (all of them for small vectors)
      stats: Object.fromEntries(await Promise.all(spec.entries.slice(0, 20).map(async (e) => [e.name, await r.stat(e.name)]))),
    };
    fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest) + "\n");
    console.log(`${spec.name}: ${bytes.length} bytes`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
