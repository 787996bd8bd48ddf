import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { cli as run } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const cli = (...args: string[]): { code: number; out: string; err: string } => run(args);

describe("des-pack CLI", () => {
  const dir = tempDir();
  const src = path.join(dir, "src");
  const files: Record<string, Buffer> = {
    "a.txt": Buffer.from("alpha\n"),
    "nested/deeper/b.bin": Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 255)),
    "nested/empty": Buffer.alloc(0),
    "ünïcode name.txt": Buffer.from("ü"),
  };
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), body);
  }
  const archive = path.join(dir, "out.des");

  it("packs a folder, lists, gets and unpacks it back identically", () => {
    const packed = cli("pack", src, archive, "--compress", "gzip", "--no-metadata");
    expect(packed.code, packed.err).toBe(0);
    expect(packed.err).toContain("4 entries");
    const listed = cli("list", archive);
    expect(listed.out.trim().split("\n")).toEqual(
      Object.keys(files).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    const got = cli("get", archive, "a.txt");
    expect(got.out).toBe("alpha\n");
    const out = path.join(dir, "unpacked");
    expect(cli("unpack", archive, out).code).toBe(0);
    for (const [name, body] of Object.entries(files))
      expect(fs.readFileSync(path.join(out, name)).equals(body), name).toBe(true);
    expect(cli("verify", archive).out).toContain("ok");
  });

  it("exits 1 with the error code on a damaged archive, 2 on bad usage", () => {
    const bad = path.join(dir, "bad.des");
    const bytes = fs.readFileSync(archive);
    bytes[20] = bytes[20]! ^ 0xff; // inside DATA
    fs.writeFileSync(bad, bytes);
    const v = cli("verify", bad);
    expect(v.code).toBe(1);
    expect(v.out).toContain("DES_CHECKSUM");
    const refused = cli("pack", src, archive);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("DES_EXISTS");
    expect(cli("frobnicate").code).toBe(2);
    expect(cli("get", archive).code).toBe(2);
  });
});
