import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, DesWriter, FsIndexCache, MemoryIndexCache } from "../src/index.js";
import type { IndexCache } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

async function packed(dir: string, n: number): Promise<string> {
  const p = path.join(dir, "a.des");
  const w = await DesWriter.create(p);
  for (let i = 0; i < n; i++) await w.add(`f${i}.txt`, enc(`body ${i}`));
  await w.close();
  return p;
}

describe("an index cache over a local archive that is appended to in place", () => {
  const dir = tempDir();
  const caches: [string, () => IndexCache][] = [
    ["MemoryIndexCache", () => new MemoryIndexCache({ maxBytes: 1 << 24 })],
    ["FsIndexCache", () => new FsIndexCache({ dir: fs.mkdtempSync(path.join(dir, "fs-")), maxBytes: 1 << 24 })],
  ];
  for (const [label, make] of caches) {
    it(`${label}: a warm index of generation 1 never answers after an append of generation 2`, async () => {
      const sub = fs.mkdtempSync(path.join(dir, "a-"));
      const p = await packed(sub, 50);
      const cache = make();
      const r1 = await DesReader.open(p, { cache });
      await r1.warm();
      await r1.close();
      // Unchanged: the warm open still makes zero requests.
      const r0 = await DesReader.open(p, { cache });
      expect(r0.ioStats.requests).toBe(0);
      expect(await r0.has("f1.txt")).toBe(true);
      await r0.close();

      const a = await DesWriter.append(p);
      await a.add("new.txt", enc("NEW"));
      await a.delete("f1.txt");
      expect((await a.close()).generation).toBe(2);

      const r2 = await DesReader.open(p, { cache });
      expect(r2.generation).toBe(2);
      expect(r2.size).toBe(fs.statSync(p).size);
      expect(await r2.has("new.txt")).toBe(true);
      expect(await r2.has("f1.txt")).toBe(false);
      const names = await r2.list();
      expect(names.length).toBe(50);
      expect(names).toContain("new.txt");
      expect(names).not.toContain("f1.txt");
      expect(dec(await r2.get("new.txt"))).toBe("NEW");
      expect(dec(await r2.get("f49.txt"))).toBe("body 49");
      await r2.close();

      // The new generation's tail is now the cached one: the next open is warm again.
      const r3 = await DesReader.open(p, { cache });
      expect(r3.generation).toBe(2);
      expect(await r3.has("new.txt")).toBe(true);
      await r3.close();
    });
  }
});
