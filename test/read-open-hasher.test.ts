/**
 * The first open of a process compiles the hash WebAssembly while its tail
 * read is in flight, not after it (the cold path: on S3 or HTTP the read
 * takes tens of milliseconds, and the compile then costs nothing). Its own
 * file: vitest gives each file fresh modules, so nothing here has hashed
 * before the open.
 */
import fs from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { hasherLoaded } from "../src/format/hash.js";
import { DesReader, MemorySource } from "../src/index.js";
import type { RangeSource } from "../src/index.js";

const VECTOR = path.join(import.meta.dirname, "..", "spec", "vectors", "v2_small", "archive.des");

/** A memory source whose tail read answers after `ms`, noting whether the hash module was ready by then. */
function slowTail(bytes: Uint8Array, ms: number): RangeSource & { readyAtTail?: boolean } {
  const inner = new MemorySource(bytes);
  const src: RangeSource & { readyAtTail?: boolean } = {
    key: "slow-tail",
    size: inner.size,
    hints: inner.hints,
    read: (offset, length, signal) => inner.read(offset, length, signal),
    async readTail(length, signal) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      src.readyAtTail = hasherLoaded();
      return inner.readTail(length, signal);
    },
  };
  return src;
}

it("compiles the hash module while the first tail read is in flight", async () => {
  expect(hasherLoaded()).toBe(false);
  const src = slowTail(new Uint8Array(fs.readFileSync(VECTOR)), 30);
  const reader = await DesReader.open(src);
  try {
    expect(src.readyAtTail).toBe(true);
    expect((await reader.list()).length).toBeGreaterThan(0);
  } finally {
    await reader.close();
  }
});
