import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FsIndexCache } from "../src/cache/fs.js";
import { tempDir } from "./helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = tempDir("des-fscache-");
let n = 0;
const freshDir = (): string => path.join(root, `c${n++}`);

function folder(dir: string): { files: string[]; tmp: string[]; bytes: number } {
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const files = names.filter((x) => x.endsWith(".dc"));
  const tmp = names.filter((x) => x.startsWith(".tmp-"));
  const bytes = names.reduce((a, x) => a + fs.statSync(path.join(dir, x)).size, 0);
  return { files, tmp, bytes };
}

describe("FsIndexCache", () => {
  it("round-trips bytes, across instances too (what a new Lambda process sees in /tmp)", async () => {
    const dir = freshDir();
    const a = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    const v = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 255);
    await a.set("des1|s3://b/k.des|tail", v);
    expect(await a.get("des1|s3://b/k.des|tail")).toEqual(v);
    expect(await a.get("missing")).toBeUndefined();
    const b = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    expect(await b.getMany(["des1|s3://b/k.des|tail", "missing"])).toEqual([v, undefined]);
    expect(a.stats()).toMatchObject({ hits: 1, misses: 1, sets: 1, errors: 0 });
    expect(b.stats()).toMatchObject({ hits: 1, misses: 1 });
    const f = folder(dir);
    expect(f.files).toHaveLength(1);
    expect(f.tmp).toHaveLength(0);
  });

  it("a damaged file is a miss, counted, and deleted", async () => {
    const dir = freshDir();
    const c = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    await c.set("k", new Uint8Array(100).fill(1));
    const file = c.fileOf("k");
    fs.truncateSync(file, 60); // torn
    expect(await c.get("k")).toBeUndefined();
    expect(fs.existsSync(file)).toBe(false);
    fs.writeFileSync(c.fileOf("k2"), "not a cache file at all");
    expect(await c.get("k2")).toBeUndefined();
    expect(c.stats()).toMatchObject({ errors: 2, misses: 2, hits: 0 });
  });

  it("expires entries after ttlMs", async () => {
    const c = new FsIndexCache({ dir: freshDir(), maxBytes: 1 << 20, ttlMs: 30 });
    await c.set("short", Uint8Array.of(1));
    await c.set("long", Uint8Array.of(2), { ttlMs: 60_000 });
    await new Promise((r) => setTimeout(r, 60));
    expect(await c.get("short")).toBeUndefined();
    expect(await c.get("long")).toEqual(Uint8Array.of(2));
    expect(fs.existsSync(c.fileOf("short"))).toBe(false);
  });

  it("deletePrefix drops that prefix only", async () => {
    const dir = freshDir();
    const c = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    const keys = ["des1|s3://b/a|tail", "des1|s3://b/a|e|0+9", "des1|s3://b/ab|tail", "zzz"];
    for (const k of keys) await c.set(k, Uint8Array.of(9));
    expect(await c.deletePrefix("des1|s3://b/a|")).toBe(2);
    expect(await c.getMany(keys)).toEqual([undefined, undefined, Uint8Array.of(9), Uint8Array.of(9)]);
    await c.delete("zzz");
    expect(folder(dir).files).toHaveLength(1);
  });

  it("keeps the folder under maxBytes, evicting the least recently used", async () => {
    const dir = freshDir();
    const maxBytes = 100_000;
    const c = new FsIndexCache({ dir, maxBytes });
    await c.set("keep", new Uint8Array(5000).fill(5));
    for (let i = 0; i < 60; i++) {
      await c.set(`k${i}`, new Uint8Array(4000).fill(i));
      // A hit refreshes recency (mtime); make it strictly newer than the writes around it.
      if (i % 5 === 0) {
        await new Promise((r) => setTimeout(r, 5));
        expect(await c.get("keep")).toBeDefined();
        await new Promise((r) => setTimeout(r, 20)); // the utimes is fire-and-forget
      }
      expect(folder(dir).bytes).toBeLessThanOrEqual(maxBytes);
    }
    const s = c.stats();
    expect(s.evictions).toBeGreaterThan(20);
    expect(await c.get("keep")).toEqual(new Uint8Array(5000).fill(5));
    expect(await c.get("k0")).toBeUndefined();
    expect(await c.get("k59")).toEqual(new Uint8Array(4000).fill(59));
    expect(s.bytes).toBe(folder(dir).bytes);
  });

  it("removes temp files left by a process that died mid-write", async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    const stale = path.join(dir, ".tmp-999999-dead-0");
    fs.writeFileSync(stale, new Uint8Array(10));
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(stale, old, old);
    const c = new FsIndexCache({ dir, maxBytes: 1 << 20 });
    await c.set("k", Uint8Array.of(1));
    expect(fs.existsSync(stale)).toBe(false);
  });

  it("two processes sharing one folder never see a torn or foreign value, and the bound holds", async () => {
    const dir = freshDir();
    const maxBytes = 150_000;
    const script = path.join(root, "fs-child.mts");
    fs.writeFileSync(
      script,
      `import { FsIndexCache } from ${JSON.stringify(path.join(ROOT, "src/cache/fs.ts"))};
const [dir, maxBytes, id] = process.argv.slice(2);
const c = new FsIndexCache({ dir, maxBytes: Number(maxBytes) });
let seed = Number(id) * 7919 + 1;
const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
let bad = 0, hits = 0, foreign = 0;
for (let i = 0; i < 600; i++) {
  const k = Math.floor(r() * 40);
  if (r() < 0.5) {
    // value: [key, writer, length lo, length hi] then the writer's byte repeated
    const len = 500 + Math.floor(r() * 6000);
    const v = new Uint8Array(len).fill(Number(id));
    v[0] = k; v[1] = Number(id); v[2] = len & 255; v[3] = len >> 8;
    await c.set("key" + k, v);
  } else {
    const v = await c.get("key" + k);
    if (!v) continue;
    hits++;
    const len = v[2] | (v[3] << 8);
    if (v[0] !== k || len !== v.length || v.subarray(4).some((b) => b !== v[1])) bad++;
    if (v[1] !== Number(id)) foreign++;
  }
}
await c.close();
process.stdout.write(JSON.stringify({ bad, hits, foreign, errors: c.stats().errors }));
`,
    );
    const run = (id: number): Promise<{ bad: number; hits: number; foreign: number; errors: number }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", script, dir, String(maxBytes), String(id)], {
          cwd: ROOT,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("error", reject);
        child.on("exit", (code) =>
          code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child ${id} exited ${code}: ${err}`)),
        );
      });
    const [a, b] = await Promise.all([run(1), run(2)]);
    expect(a.bad + b.bad).toBe(0);
    expect(a.errors + b.errors).toBe(0);
    expect(a.hits).toBeGreaterThan(0);
    expect(b.hits).toBeGreaterThan(0);
    // Each read some values the other wrote.
    expect(a.foreign + b.foreign).toBeGreaterThan(0);
    const f = folder(dir);
    expect(f.tmp).toHaveLength(0);
    // Each process bounds what it sees; together they overshoot at most by what one wrote since its last scan.
    expect(f.bytes).toBeLessThanOrEqual(maxBytes * 1.5);
  }, 60_000);
});
