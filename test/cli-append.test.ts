import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader } from "../src/read/reader.js";
import { builtCli, cli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

describe("append, rm, repack, merge through the CLI", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  it("append adds a generation, rm deletes, repack reclaims, merge joins", async () => {
    const src = path.join(dir, "src");
    fs.mkdirSync(path.join(src, "d"), { recursive: true });
    fs.writeFileSync(path.join(src, "a.txt"), "a");
    fs.writeFileSync(path.join(src, "d/b.txt"), "b");
    const more = path.join(dir, "more");
    fs.mkdirSync(more);
    fs.writeFileSync(path.join(more, "c.txt"), "c");
    fs.chmodSync(path.join(more, "c.txt"), 0o750);
    const x = path.join(dir, "x.des");
    expect(cli(["pack", src, x, "-q"]).code).toBe(0);
    const ap = cli(["append", x, "-C", more, "c.txt", "--json"]);
    expect(ap.code, ap.err).toBe(0);
    expect(JSON.parse(ap.out)).toMatchObject({ command: "append", generation: 2, added: 1 });
    expect(cli(["append", x, "-C", more, "c.txt"]).err).toContain("already in");
    expect(cli(["append", x, "-C", more, "c.txt", "--replace", "-q"]).code).toBe(0);
    expect(cli(["rm", x, "d/*", "-q"]).code).toBe(0);
    expect(cli(["rm", x, "nope"]).code).toBe(1);
    const info = JSON.parse(cli(["info", "--json", x]).out) as { generations: number; reclaimableBytes: number };
    expect(info.generations).toBe(4);
    expect(info.reclaimableBytes).toBeGreaterThan(0);
    expect(cli(["ls", "--sort", x]).out.trim().split("\n")).toEqual(["a.txt", "c.txt", "d/"]);
    const out = path.join(dir, "out");
    expect(cli(["extract", x, "-C", out]).code).toBe(0);
    expect(fs.statSync(path.join(out, "c.txt")).mode & 0o777).toBe(0o750);
    expect(cli(["repack", x, "-q", "--exclude", "d"]).code).toBe(0);
    const after = JSON.parse(cli(["info", "--json", x]).out) as {
      generations: number;
      reclaimableBytes: number;
      entries: number;
    };
    expect(after).toMatchObject({ generations: 1, reclaimableBytes: 0, entries: 2 });
    const y = path.join(dir, "y.des");
    expect(cli(["pack", more, y, "-q"]).code).toBe(0);
    const z = path.join(dir, "z.des");
    expect(cli(["merge", z, x, y]).code).toBe(1); // c.txt in both
    expect(cli(["merge", z, x, y, "--on-duplicate", "last", "-q"]).code).toBe(0);
    const r = await DesReader.open(z);
    expect(await r.list()).toEqual(["a.txt", "c.txt"]);
    await r.close();
  });
});
