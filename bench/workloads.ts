/**
 * Archives for the cold-path and planning benchmarks, generated once into
 * bench/.data and reused while their parameters (and, for our archives, the
 * writer's output) match: a v2 archive of a
 * seeded file list (names and bodies from tree.ts, no tree on disk), and the
 * same files as a Cotar (a tar with Cotar's hash index appended, built by
 * @cotar/builder) for the peer comparison.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DesWriter } from "../src/index.js";
import { buildVector, vectorSpecs } from "../spec/vectors/generate.js";
import { DATA_DIR, fileBody, treeFiles, treeId } from "./tree.js";
import type { TreeFile, TreeParams } from "./tree.js";

/** 100,000 entries of 1-8 KiB (the shared tree's shape). */
export const SPARSE: TreeParams = { seed: 42, files: 100_000, minSize: 1024, maxSize: 8192 };
/** 100,000 entries of 16-512 B. */
export const DENSE: TreeParams = { seed: 43, files: 100_000, minSize: 16, maxSize: 512 };
/** 1,000,000 entries of 16-512 B. */
export const MILLION: TreeParams = { seed: 44, files: 1_000_000, minSize: 16, maxSize: 512 };

export interface Workload {
  readonly params: TreeParams;
  readonly files: readonly TreeFile[];
  readonly des: string;
}

function poolFor(p: TreeParams): Buffer {
  // The same construction as tree.ts's pool, smaller: bodies are slices of it.
  const buf = Buffer.allocUnsafe(4 << 20);
  let a = (p.seed ^ 0x5eed) >>> 0;
  for (let i = 0; i < buf.length; i += 4) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    buf.writeUInt32LE((t ^ (t >>> 14)) >>> 0, i);
  }
  return buf;
}

/** Calls `each` with every file's name and body, in name order. */
function forEachBody(p: TreeParams, files: readonly TreeFile[], each: (f: TreeFile, body: Buffer) => void): void {
  const pool = poolFor(p);
  files.forEach((f, i) => each(f, fileBody(f, i, pool, p.seed)));
}

function fresh(file: string, want: string): boolean {
  try {
    return fs.readFileSync(`${file}.json`, "utf8") === want && fs.existsSync(file);
  } catch {
    return false;
  }
}

let fingerprint: Promise<string> | undefined;

/**
 * What the writer makes of fixed input now (the sha256 of the multi-page
 * vector, built afresh): a cached archive is rewritten when the writer's
 * output changed (page sizes, record layout), not only when its inputs did.
 */
function writerFingerprint(): Promise<string> {
  fingerprint ??= (async () => {
    const spec = vectorSpecs().find((v) => v.name === "v2_multipage")!;
    const ext = fs.mkdtempSync(path.join(os.tmpdir(), "des-bench-fp-"));
    try {
      return crypto
        .createHash("sha256")
        .update(await buildVector(spec, ext))
        .digest("hex");
    } finally {
      fs.rmSync(ext, { recursive: true, force: true });
    }
  })();
  return fingerprint;
}

/** The v2 archive of `p`'s files, written with addMany in batches. */
export async function ensureDes(p: TreeParams, log: (s: string) => void): Promise<Workload> {
  const files = treeFiles(p);
  const file = path.join(DATA_DIR, `${treeId(p)}.v2.des`);
  const want = JSON.stringify({ ...p, kind: "des-v2", writer: await writerFingerprint() });
  if (!fresh(file, want)) {
    log(`writing ${file}`);
    fs.mkdirSync(DATA_DIR, { recursive: true });
    const w = await DesWriter.create(file, { overwrite: true });
    const pool = poolFor(p);
    for (let i = 0; i < files.length; i += 5000) {
      const batch: [string, Uint8Array][] = [];
      for (let k = i; k < Math.min(files.length, i + 5000); k++)
        batch.push([files[k]!.rel, fileBody(files[k]!, k, pool, p.seed)]);
      await w.addMany(batch);
    }
    await w.close();
    fs.writeFileSync(`${file}.json`, want);
  }
  return { params: p, files, des: file };
}

/** A ustar header for a regular file. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(size.toString(8).padStart(11, "0") + "\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}

/** The same files as a Cotar: a tar, then the index @cotar/builder builds from it. */
export async function ensureCotar(p: TreeParams, log: (s: string) => void): Promise<string> {
  const files = treeFiles(p);
  const file = path.join(DATA_DIR, `${treeId(p)}.tar.co`);
  const want = JSON.stringify({ ...p, kind: "cotar" });
  if (fresh(file, want)) return file;
  log(`writing ${file}`);
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w");
  let buf = Buffer.allocUnsafe(8 << 20);
  let used = 0;
  const put = (b: Buffer): void => {
    if (used + b.length > buf.length) {
      fs.writeSync(fd, buf, 0, used);
      used = 0;
      if (b.length > buf.length) buf = Buffer.allocUnsafe(b.length * 2);
    }
    b.copy(buf, used);
    used += b.length;
  };
  forEachBody(p, files, (f, body) => {
    put(tarHeader(f.rel, body.length));
    put(body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) put(Buffer.alloc(pad));
  });
  put(Buffer.alloc(1024));
  fs.writeSync(fd, buf, 0, used);
  fs.closeSync(fd);
  const { CotarIndexBuilder } = await import("@cotar/builder");
  const handle = await fs.promises.open(tmp, "r");
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, fatal: () => undefined };
  const index = await CotarIndexBuilder.create(handle, undefined, quiet);
  await handle.close();
  fs.appendFileSync(tmp, index.buffer);
  fs.renameSync(tmp, file);
  fs.writeFileSync(`${file}.json`, want);
  return file;
}
