/**
 * The shared workload: a seeded tree of many small files on disk, generated
 * once under bench/.data/ and reused while its parameters match.
 *
 * The file list (paths and sizes) is a pure function of the parameters, so a
 * benchmark can know every name without walking the disk. Contents are seeded
 * pseudo-random bytes (incompressible, like already-compressed assets), each
 * file starting with its own path so no two files are equal.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { rng } from "./lib.js";

export interface TreeParams {
  readonly seed: number;
  readonly files: number;
  readonly minSize: number;
  readonly maxSize: number;
}

export const DEFAULT_TREE: TreeParams = { seed: 42, files: 100_000, minSize: 1024, maxSize: 8192 };

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const DATA_DIR = path.join(BENCH_DIR, ".data");

export interface TreeFile {
  /** Relative path with "/" separators; also the entry name in the archive. */
  readonly rel: string;
  readonly size: number;
}

export interface Tree {
  readonly params: TreeParams;
  readonly root: string;
  /** Sorted by path (bytewise; the names are ASCII). */
  readonly files: readonly TreeFile[];
  readonly totalBytes: number;
  /** True when this call generated the tree (false: reused from disk). */
  readonly generated: boolean;
  readonly generateMs: number;
}

const WORDS = [
  "assets",
  "images",
  "icons",
  "thumbs",
  "docs",
  "pages",
  "data",
  "tiles",
  "cache",
  "models",
  "fonts",
  "styles",
  "scripts",
  "locales",
  "audio",
  "sprites",
  "meta",
  "shards",
  "blobs",
  "logs",
];
const EXTS = ["png", "json", "txt", "bin", "webp", "js", "css", "md"];

export function treeId(p: TreeParams): string {
  return `tree-s${p.seed}-n${p.files}-${p.minSize}-${p.maxSize}`;
}

/** The deterministic file list: paths like `images/d042/e17/f0012345.png`, sorted. */
export function treeFiles(p: TreeParams = DEFAULT_TREE): TreeFile[] {
  const r = rng(p.seed);
  const out: TreeFile[] = [];
  const perLeaf = 100;
  for (let i = 0; i < p.files; i++) {
    const leaf = Math.floor(i / perLeaf);
    const top = WORDS[leaf % WORDS.length]!;
    const mid = `d${String(Math.floor(leaf / 10) % 1000).padStart(3, "0")}`;
    const low = `e${String(leaf % 10).padStart(2, "0")}`;
    const ext = EXTS[Math.floor(r() * EXTS.length)]!;
    const size = p.minSize + Math.floor(r() * (p.maxSize - p.minSize + 1));
    out.push({ rel: `${top}/${mid}/${low}/f${String(i).padStart(7, "0")}.${ext}`, size });
  }
  out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return out;
}

/** A pool of seeded random bytes; file bodies are slices of it. */
function randomPool(seed: number, bytes: number): Buffer {
  const r = rng(seed ^ 0x5eed);
  const buf = Buffer.allocUnsafe(bytes);
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, bytes >>> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = (r() * 4294967296) >>> 0;
  return buf;
}

/** The bytes of one file (deterministic): its path, a newline, then pool bytes. */
export function fileBody(f: TreeFile, index: number, pool: Buffer, seed: number): Buffer {
  const body = Buffer.allocUnsafe(f.size);
  const head = Buffer.from(`${f.rel}\n`);
  const n = head.copy(body, 0, 0, Math.min(head.length, f.size));
  const start = (Math.imul(index + 1, 2654435761) ^ seed) >>> 0;
  const at = start % (pool.length - f.size);
  pool.copy(body, n, at, at + (f.size - n));
  return body;
}

/**
 * Returns the tree, generating it when `bench/.data/<id>/` is missing or
 * incomplete. Generation writes into a temporary directory and renames it
 * into place at the end, so an interrupted run never leaves a tree that
 * looks complete.
 */
export function ensureTree(p: TreeParams = DEFAULT_TREE, log: (s: string) => void = () => {}): Tree {
  const files = treeFiles(p);
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  const root = path.join(DATA_DIR, treeId(p));
  const marker = path.join(DATA_DIR, `${treeId(p)}.complete.json`);
  const want = JSON.stringify({ ...p, totalBytes });
  if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === want && fs.existsSync(root)) {
    return { params: p, root, files, totalBytes, generated: false, generateMs: 0 };
  }
  const t0 = performance.now();
  log(`generating ${p.files} files (${(totalBytes / 2 ** 20).toFixed(0)} MiB) under ${root} ...`);
  fs.mkdirSync(DATA_DIR, { recursive: true });
  fs.rmSync(marker, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
  const tmp = `${root}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const pool = randomPool(p.seed, 16 << 20);
  const made = new Set<string>();
  files.forEach((f, i) => {
    const full = path.join(tmp, f.rel);
    const dir = path.dirname(full);
    if (!made.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    fs.writeFileSync(full, fileBody(f, i, pool, p.seed));
  });
  fs.renameSync(tmp, root);
  fs.writeFileSync(marker, want);
  const generateMs = performance.now() - t0;
  log(`generated in ${(generateMs / 1000).toFixed(1)} s`);
  return { params: p, root, files, totalBytes, generated: true, generateMs };
}

// `tsx bench/tree.ts` generates (or checks) the default tree.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t = ensureTree(DEFAULT_TREE, (s) => console.log(s));
  console.log(`${t.root}: ${t.files.length} files, ${t.totalBytes} bytes, ${t.generated ? "generated" : "reused"}`);
}

// ---------------------------------------------------------------------------
// Small helpers the benchmark modules share.

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `node --import tsx <script> ...args` and parses the last stdout line as JSON. */
export function runTsChild<T>(
  script: string,
  args: readonly string[],
  opts: { timeoutMs?: number } = {},
): { result: T; wallMs: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(BENCH_DIR, script), ...args], {
    cwd: path.dirname(BENCH_DIR),
    encoding: "utf8",
    maxBuffer: 64 << 20,
    timeout: opts.timeoutMs ?? 300_000,
  });
  const wallMs = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`${script} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
  const lines = r.stdout.trim().split("\n");
  return { result: JSON.parse(lines[lines.length - 1]!) as T, wallMs };
}

/** Flushes dirty pages so one measurement does not pay for the previous one's writeback. */
export function syncDisks(): void {
  spawnSync("sync");
}

export const MB = 1e6;

/** Where pack.ts leaves the packed tree for read.ts (with a `.json` sidecar). */
export function archivePath(p: TreeParams = DEFAULT_TREE): string {
  return path.join(DATA_DIR, `${treeId(p)}.des`);
}
