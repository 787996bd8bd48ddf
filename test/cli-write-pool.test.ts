import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { WritePool } from "../src/cli/write-pool.js";
import type { PoolFailure, PoolFile } from "../src/cli/write-pool.js";
import { tempDir } from "./helpers/tmp.js";

function body(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

describe("extract write pool", () => {
  it("writes many files while the bytes in flight stay within the shared slots", async () => {
    const dir = tempDir("pool");
    const done: PoolFile[] = [];
    const failed: PoolFailure[] = [];
    const pool = new WritePool(
      (files, f) => {
        done.push(...files);
        failed.push(...f);
      },
      { workers: 2, slotBytes: 16 << 10, batchFiles: 8 },
    );
    const sizes: number[] = [];
    try {
      for (let i = 0; i < 600; i++) {
        // Mostly small bodies, some bigger than a slot (sent alone).
        const size = i % 97 === 0 ? 40 << 10 : (i * 137) % 9000;
        sizes.push(size);
        await pool.add({ path: path.join(dir, `f${i}`), mode: 0o640, mtime: 1_600_000_000 + i }, body(i, size));
        // Copied, not kept: the budget is 4 slots (2 per worker) plus one body bigger than a slot.
        expect(pool.bytesInFlight).toBeLessThanOrEqual(pool.budgetBytes + (40 << 10));
      }
      await pool.drain();
    } finally {
      await pool.close();
    }
    expect(pool.budgetBytes).toBe(4 * (16 << 10));
    expect(pool.peakBytesInFlight).toBeGreaterThan(0);
    expect(pool.peakBytesInFlight).toBeLessThanOrEqual(pool.budgetBytes + (40 << 10));
    expect(pool.bytesInFlight).toBe(0);
    expect(failed).toEqual([]);
    expect(done.length).toBe(600);
    for (let i = 0; i < 600; i++) {
      const p = path.join(dir, `f${i}`);
      expect(Buffer.compare(fs.readFileSync(p), Buffer.from(body(i, sizes[i]!)))).toBe(0);
      const st = fs.statSync(p);
      expect(st.mode & 0o777).toBe(0o640);
      expect(Math.round(st.mtimeMs / 1000)).toBe(1_600_000_000 + i);
    }
  });

  it("hands names that exist back instead of writing over them", async () => {
    const dir = tempDir("pool-exists");
    fs.writeFileSync(path.join(dir, "taken"), "old");
    const failed: PoolFailure[] = [];
    const pool = new WritePool((_f, f) => failed.push(...f), { workers: 1, slotBytes: 1024 });
    try {
      await pool.add({ path: path.join(dir, "taken"), mode: 0o644, mtime: NaN }, body(1, 10));
      await pool.add({ path: path.join(dir, "new"), mode: 0o644, mtime: NaN }, body(2, 10));
      await pool.drain();
    } finally {
      await pool.close();
    }
    expect(failed.map((f) => [path.basename(f.file.path), f.code])).toEqual([["taken", "EEXIST"]]);
    expect(fs.readFileSync(path.join(dir, "taken"), "utf8")).toBe("old");
    expect(fs.readFileSync(path.join(dir, "new")).length).toBe(10);
  });

  it("moves a big body the caller gives up to the worker instead of copying it; views and kept bodies are copied", async () => {
    const dir = tempDir("pool-move");
    const pool = new WritePool(() => undefined, { workers: 1, slotBytes: 1024 });
    const given = body(1, 5000);
    const kept = body(2, 5000);
    const backing = body(3, 9000);
    const view = backing.subarray(1000, 7000);
    try {
      await pool.add({ path: path.join(dir, "given"), mode: 0o644, mtime: NaN }, given, { transfer: true });
      await pool.add({ path: path.join(dir, "kept"), mode: 0o644, mtime: NaN }, kept);
      await pool.add({ path: path.join(dir, "view"), mode: 0o644, mtime: NaN }, view, { transfer: true });
      await pool.add({ path: path.join(dir, "small"), mode: 0o644, mtime: NaN }, body(4, 100), { transfer: true });
      await pool.drain();
    } finally {
      await pool.close();
    }
    // Moved: the caller's buffer is detached; only that body counts as moved.
    expect(given.buffer.byteLength).toBe(0);
    expect(pool.movedBytes).toBe(5000);
    expect(kept.length).toBe(5000);
    expect(backing.length).toBe(9000);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "given")), Buffer.from(body(1, 5000)))).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "kept")), Buffer.from(kept))).toBe(0);
    expect(
      Buffer.compare(fs.readFileSync(path.join(dir, "view")), Buffer.from(body(3, 9000).subarray(1000, 7000))),
    ).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(dir, "small")), Buffer.from(body(4, 100)))).toBe(0);
    expect(pool.bytesInFlight).toBe(0);
  });
});
