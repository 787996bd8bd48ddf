import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader } from "../src/index.js";
import type { Location } from "../src/io/location.js";
import type { RangeSource } from "../src/io/source.js";
import { FolderLocation } from "../src/locations/folder.js";
import { LocationParts } from "../src/store/parts.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-store-parts-");

/** A location that counts the sources it hands out and how many of them were closed. */
function counting(inner: Location): { location: Location; opened: number; closed: () => number } {
  const sources: RangeSource[] = [];
  let closed = 0;
  const location: Location = Object.create(inner) as Location;
  location.source = async (key, signal) => {
    const src = await inner.source(key, signal);
    sources.push(src);
    const close = src.close?.bind(src);
    src.close = async () => {
      closed++;
      await close?.();
    };
    return src;
  };
  return {
    location,
    get opened() {
      return sources.length;
    },
    closed: () => closed,
  };
}

describe("LocationParts.mergeInto (compaction on a location)", () => {
  it("merges uploaded parts (the first wins a duplicate) and closes every source it opened", async () => {
    const root = path.join(dir, "bucket");
    fs.mkdirSync(root, { recursive: true });
    const c = counting(new FolderLocation(root));
    const parts = new LocationParts(c.location, path.join(dir, "spool"));
    await parts.create("a.des", async (w) => {
      await w.add("x", new TextEncoder().encode("from a"));
      await w.add("only-a", new TextEncoder().encode("1"));
    });
    await parts.create("b.des", async (w) => {
      await w.add("x", new TextEncoder().encode("from b"));
      await w.add("only-b", new TextEncoder().encode("2"));
    });
    const before = c.opened;
    expect(await parts.mergeInto("merged.des", ["a.des", "b.des"])).toBe(3);
    expect(c.opened - before).toBe(2);
    expect(c.closed()).toBe(c.opened);
    const r = await DesReader.open(path.join(root, "merged.des"));
    expect((await r.list()).sort()).toEqual(["only-a", "only-b", "x"]);
    expect(new TextDecoder().decode(await r.get("x"))).toBe("from a");
    await r.close();
  });
});
