import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import xxhash from "xxhash-wasm";
import { describe, expect, it } from "vitest";
import { XXHASH_WASM_BASE64 } from "../src/format/xxhash-module.js";
import { instantiateSync } from "../src/format/xxhash-sync.js";
import { loadHasher, xxh64 } from "../src/format/hash.js";
import { rngFor as rng } from "./helpers/store-rng.js";

describe("xxhash instantiated synchronously", () => {
  it("is found in this install and hashes exactly as the package's asynchronous API", async () => {
    const mine = instantiateSync();
    expect(mine).toBeDefined();
    const theirs = await xxhash();
    const r = rng(11);
    // Sizes around the stripe (32 bytes), the 64 KiB page the memory grows by, and past it.
    for (const size of [0, 1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 1000, 65_535, 65_536, 65_537, 200_000]) {
      const bytes = new Uint8Array(size).map(() => Math.floor(r() * 256));
      for (const seed of [0n, 1n, 0xffff_ffff_ffff_ffffn])
        expect(mine!.h64Raw(bytes, seed)).toBe(theirs.h64Raw(bytes, seed));
      expect(mine!.h32Raw(bytes, 7)).toBe(theirs.h32Raw(bytes, 7));
      const s = mine!.create64(5n);
      const t = theirs.create64(5n);
      for (let at = 0; at < size; at += 1 + Math.floor(r() * 40_000)) {
        const chunk = bytes.subarray(at, Math.min(size, at + 1 + Math.floor(r() * 40_000)));
        s.update(chunk);
        t.update(chunk);
      }
      expect(s.digest()).toBe(t.digest());
    }
    for (const text of ["", "a", "héllo wörld", "日本語のテキスト".repeat(5000)]) {
      expect(mine!.h64(text)).toBe(theirs.h64(text));
      expect(mine!.h64ToString(text, 3n)).toBe(theirs.h64ToString(text, 3n));
      expect(mine!.h32ToString(text, 3)).toBe(theirs.h32ToString(text, 3));
      expect(mine!.create32(9).update(text).update(text).digest()).toBe(
        theirs.create32(9).update(text).update(text).digest(),
      );
    }
    // A streaming state survives one-shot hashes in between (they share the module's memory).
    const s = mine!.create64(0n).update(new Uint8Array([1, 2, 3]));
    mine!.h64Raw(new Uint8Array(100_000).fill(9));
    expect(s.update(new Uint8Array([4])).digest()).toBe(theirs.h64Raw(new Uint8Array([1, 2, 3, 4])));
  });

  it("embeds exactly the installed package's WebAssembly module", () => {
    const entry = createRequire(import.meta.url).resolve("xxhash-wasm");
    const file = fs.readFileSync(path.join(path.dirname(entry), "..", "workerd", "xxhash.wasm"));
    expect(file.length).toBe(3105);
    expect(Buffer.from(XXHASH_WASM_BASE64, "base64").equals(file)).toBe(true);
  });

  it("is what the library uses from import: hashing works before any loadHasher() is awaited", async () => {
    expect(xxh64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(await loadHasher()).toBeDefined();
  });
});
