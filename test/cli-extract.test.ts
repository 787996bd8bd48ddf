import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader } from "../src/read/reader.js";
import { DesWriter } from "../src/write/writer.js";
import { fsMetaValue } from "../src/format/fs-meta.js";
import { builtCli, cli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

type Spec = [name: string, body: string, meta?: unknown];

const link = (target: string): string => target;
const symlinkMeta = fsMetaValue({ kind: "symlink", mode: 0o777, mtimeSeconds: 1_600_000_000, mtimeNanos: 0 });

/** Writes a crafted archive with DesWriter (names the CLI's own pack would never produce). */
async function craft(file: string, entries: Spec[]): Promise<string> {
  const w = await DesWriter.create(file);
  for (const [name, body, meta] of entries) await w.add(name, Buffer.from(body), meta === undefined ? {} : { meta });
  await w.close();
  return file;
}

/** Every path under dir (relative), sorted. */
function tree(dir: string, prefix = ""): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    out.push(prefix + e.name);
    if (e.isDirectory()) out.push(...tree(path.join(dir, e.name), `${prefix}${e.name}/`));
  }
  return out.sort();
}

describe("extract refuses names that could land outside the target", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  for (const [label, name] of [
    ["an absolute name", "/etc/des-pack-pwned"],
    ["a .. component", "../escaped"],
    ["a .. deeper in", "a/../../escaped"],
    ["a drive letter", "C:escaped"],
    ["a backslash root", "\\escaped"],
  ] as const) {
    it(`${label}: exit 1, one line, no usage text, nothing written`, async () => {
      const archive = await craft(path.join(dir, `${label}.des`), [
        ["fine.txt", "ok"],
        [name, "evil"],
      ]);
      const out = path.join(dir, `out-${label}`);
      const r = cli(["extract", archive, "-C", out]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/refusing to extract/);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).not.toMatch(/Usage|at .*\.js:\d+/);
      expect(tree(out)).toEqual([]);
      expect(fs.existsSync(path.join(dir, "escaped"))).toBe(false);
    });
  }

  it("names that collapse to one path are refused (a//b and a/b, a/./c and a/c, a and a/b)", async () => {
    for (const pair of [
      ["a//b", "a/b"],
      ["a/./c", "a/c"],
      ["a", "a/b"],
    ]) {
      const archive = await craft(
        path.join(dir, `collapse-${pair.join("_").replace(/\//g, "-")}.des`),
        pair.map((n, i): Spec => [n, `body${i}`]),
      );
      const out = path.join(dir, `out-collapse-${pair[0]!.replace(/\//g, "-")}`);
      const r = cli(["extract", archive, "-C", out]);
      expect(r.code, pair.join(" ")).toBe(1);
      expect(r.err).toMatch(/refusing to extract/);
      expect(tree(out)).toEqual([]);
    }
  });

  it("dir/ becomes a folder, not a file", async () => {
    const archive = await craft(path.join(dir, "dirslash.des"), [
      ["dir/", ""],
      ["dir/x", "x"],
    ]);
    const out = path.join(dir, "out-dirslash");
    expect(cli(["extract", archive, "-C", out]).code).toBe(0);
    expect(fs.lstatSync(path.join(out, "dir")).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(out, "dir/x"), "utf8")).toBe("x");
  });
});

describe("extract never follows a symbolic link that is in the target", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  it("a folder link in the target is not followed (link/pwned)", async () => {
    const elsewhere = path.join(dir, "elsewhere1");
    fs.mkdirSync(elsewhere);
    const out = path.join(dir, "out1");
    fs.mkdirSync(out);
    fs.symlinkSync(elsewhere, path.join(out, "link"));
    const archive = await craft(path.join(dir, "a1.des"), [["link/pwned", "evil"]]);
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/symbolic link.*not followed/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    // With --force the link is replaced by a real folder; still nothing outside.
    expect(cli(["extract", archive, "-C", out, "--force"]).code).toBe(0);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(fs.lstatSync(path.join(out, "link")).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(out, "link/pwned"), "utf8")).toBe("evil");
  });

  it("a file link in the target is not written through, even with --force", async () => {
    const precious = path.join(dir, "precious");
    fs.writeFileSync(precious, "keep me");
    const out = path.join(dir, "out2");
    fs.mkdirSync(out);
    fs.symlinkSync(precious, path.join(out, "victim"));
    fs.symlinkSync(path.join(dir, "not-there"), path.join(out, "dangling"));
    const archive = await craft(path.join(dir, "a2.des"), [
      ["victim", "evil"],
      ["dangling", "evil"],
    ]);
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/exists \(use --force to overwrite\)/);
    expect(fs.readFileSync(precious, "utf8")).toBe("keep me");
    expect(fs.existsSync(path.join(dir, "not-there"))).toBe(false);
    expect(cli(["extract", archive, "-C", out, "--force"]).code).toBe(0);
    expect(fs.readFileSync(precious, "utf8")).toBe("keep me");
    expect(fs.existsSync(path.join(dir, "not-there"))).toBe(false);
    expect(fs.lstatSync(path.join(out, "victim")).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(out, "victim"), "utf8")).toBe("evil");
  });

  it("links in the archive are made last and only when they stay inside (--allow-unsafe-links for the rest)", async () => {
    const archive = await craft(path.join(dir, "a3.des"), [
      ["abs", link("/etc/passwd"), symlinkMeta],
      ["up", link("../../outside"), symlinkMeta],
      ["y", link("."), symlinkMeta],
      ["x", link("y/.."), symlinkMeta],
      ["ok", link("sub/file"), symlinkMeta],
      ["sub/file", "inside"],
      ["esc", link("sub/../.."), symlinkMeta],
    ]);
    const out = path.join(dir, "out3");
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    const made = tree(out);
    expect(made).toEqual(["ok", "sub", "sub/file", "y"]);
    expect(fs.readFileSync(path.join(out, "ok"), "utf8")).toBe("inside");
    expect(r.err.match(/leads? outside/g)).toHaveLength(4);
    const out2 = path.join(dir, "out3b");
    expect(cli(["extract", archive, "-C", out2, "--allow-unsafe-links"]).code).toBe(0);
    expect(fs.readlinkSync(path.join(out2, "abs"))).toBe("/etc/passwd");
  });

  for (const [order, entries] of [
    [
      "x before d",
      [
        ["x", "d/.."],
        ["d", "."],
      ],
    ],
    [
      "d before x",
      [
        ["d", "."],
        ["x", "d/.."],
      ],
    ],
  ] as const) {
    it(`a link through a later link cannot lead out (x -> d/.., d -> .; ${order})`, async () => {
      const tag = order.replace(/ /g, "-");
      const archive = await craft(
        path.join(dir, `dd-${tag}.des`),
        entries.map(([n, t]): Spec => [n, link(t), symlinkMeta]),
      );
      const out = path.join(dir, `out-dd-${tag}`);
      const r = cli(["extract", archive, "-C", out]);
      expect(r.code).toBe(1);
      expect(tree(out)).toEqual(["d"]);
      expect(fs.readlinkSync(path.join(out, "d"))).toBe(".");
      expect(r.err).toMatch(/x: .*not creating a link to "d\/\.\.", .*leads? outside .*--allow-unsafe-links/);
      expect(r.err).toMatch(/1 failed/);
      expect(r.err).not.toMatch(/at .*\.js:\d+/);
      const out2 = path.join(dir, `out-dd-${tag}-allowed`);
      expect(cli(["extract", archive, "-C", out2, "--allow-unsafe-links"]).code).toBe(0);
      expect(fs.readlinkSync(path.join(out2, "x"))).toBe("d/..");
    });
  }

  it('a leading run of ".." stays allowed while it stays inside (sub/up -> ../top, sub/deep/l -> ../../top)', async () => {
    const archive = await craft(path.join(dir, "lead.des"), [
      ["top", "T"],
      ["sub/up", link("../top"), symlinkMeta],
      ["sub/deep/l", link("../../top"), symlinkMeta],
      ["sub/mid", link("a/../top"), symlinkMeta],
    ]);
    const out = path.join(dir, "out-lead");
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    expect(fs.readFileSync(path.join(out, "sub/up"), "utf8")).toBe("T");
    expect(fs.readFileSync(path.join(out, "sub/deep/l"), "utf8")).toBe("T");
    expect(fs.existsSync(path.join(out, "sub/mid"))).toBe(false);
    expect(r.err).toMatch(/sub\/mid: .*"a\/\.\.\/top", a "\.\." after a name can lead outside/);
  });

  it("links are checked again once all exist (through a link already in DIR: s -> q/.., then l -> s/y, q -> .)", async () => {
    const out = path.join(dir, "out-recheck");
    fs.mkdirSync(out);
    fs.symlinkSync("q/..", path.join(out, "s"));
    const archive = await craft(path.join(dir, "recheck.des"), [
      ["l", link("s/y"), symlinkMeta],
      ["q", link("."), symlinkMeta],
    ]);
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    expect(tree(out)).toEqual(["q", "s"]);
    expect(r.err).toMatch(/l: .*removed the link to "s\/y", it leads outside .*--allow-unsafe-links/);
  });

  it("a hard link is made only to a file this extract wrote, never through a link or to a file already in DIR", async () => {
    const hardMeta = (linkTo: string): unknown =>
      fsMetaValue({ kind: "hardlink", mode: 0o644, mtimeSeconds: 1_600_000_000, mtimeNanos: 0, linkTo });
    const outside = path.join(dir, "outside-hl");
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, "secret.txt"), "outside DIR\n");
    const out = path.join(dir, "out-hl");
    fs.mkdirSync(out);
    fs.symlinkSync(outside, path.join(out, "sub"));
    fs.writeFileSync(path.join(out, "pre.txt"), "was here");
    const archive = await craft(path.join(dir, "hl.des"), [
      ["a", "first"],
      ["b", "first", hardMeta("a")],
      ["h", "decoy", hardMeta("sub/secret.txt")],
      ["p", "own body", hardMeta("pre.txt")],
    ]);
    const r = cli(["extract", archive, "-C", out, "-v"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n").filter(Boolean).sort()).toEqual(["a", "b", "h", "p"]);
    const secret = fs.statSync(path.join(outside, "secret.txt"));
    expect(secret.nlink).toBe(1);
    expect(fs.readFileSync(path.join(outside, "secret.txt"), "utf8")).toBe("outside DIR\n");
    expect(fs.lstatSync(path.join(out, "h")).ino).not.toBe(secret.ino);
    expect(fs.readFileSync(path.join(out, "h"), "utf8")).toBe("decoy");
    expect(fs.statSync(path.join(out, "pre.txt")).nlink).toBe(1);
    expect(fs.readFileSync(path.join(out, "p"), "utf8")).toBe("own body");
    expect(fs.lstatSync(path.join(out, "b")).ino).toBe(fs.lstatSync(path.join(out, "a")).ino);
    expect(fs.readFileSync(path.join(out, "b"), "utf8")).toBe("first");
  });

  it("a link entry and a file under it are refused together (l -> outside, then l/x)", async () => {
    const outside = path.join(dir, "outside4");
    fs.mkdirSync(outside);
    const archive = await craft(path.join(dir, "a4.des"), [
      ["l", link(outside), symlinkMeta],
      ["l/x", "evil"],
    ]);
    const out = path.join(dir, "out4");
    const r = cli(["extract", archive, "-C", out, "--allow-unsafe-links"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing to extract: "l" is a file but "l\/x" needs it to be a folder/);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(tree(out)).toEqual([]);
  });
});

describe("extract and get never destroy existing files", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  it("keeps old files by default, replaces them with --force", async () => {
    const archive = await craft(path.join(dir, "o.des"), [
      ["a.txt", "new"],
      ["b.txt", "b"],
    ]);
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, "a.txt"), "old");
    const r = cli(["extract", archive, "-C", out]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("a.txt exists (use --force to overwrite)");
    expect(fs.readFileSync(path.join(out, "a.txt"), "utf8")).toBe("old");
    expect(fs.readFileSync(path.join(out, "b.txt"), "utf8")).toBe("b");
    expect(cli(["extract", archive, "-C", out, "--force"]).code).toBe(0);
    expect(fs.readFileSync(path.join(out, "a.txt"), "utf8")).toBe("new");
    expect(tree(out).filter((n) => n.includes(".des-tmp"))).toEqual([]);
  });

  it("never overwrites the archive being read, even with --force", async () => {
    const folder = path.join(dir, "self");
    fs.mkdirSync(folder);
    const archive = await craft(path.join(folder, "photos.des"), [
      ["photos.des", "x"],
      ["other", "y"],
    ]);
    const before = fs.readFileSync(archive);
    const r = cli(["extract", archive, "-C", folder, "--force"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("is the archive being read");
    expect(fs.readFileSync(archive).equals(before)).toBe(true);
    expect(fs.readFileSync(path.join(folder, "other"), "utf8")).toBe("y");
  });

  it("get -o FILE leaves FILE alone on a missing entry, a damaged entry or -o the archive", async () => {
    const archive = await craft(path.join(dir, "g.des"), [
      ["a", "A".repeat(1000)],
      ["b", "B".repeat(1000)],
    ]);
    const dest = path.join(dir, "dest.txt");
    fs.writeFileSync(dest, "precious");
    const missing = cli(["get", archive, "nope", "-o", dest]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("DES_NOT_FOUND");
    expect(fs.readFileSync(dest, "utf8")).toBe("precious");
    const bad = path.join(dir, "bad.des");
    const bytes = fs.readFileSync(archive);
    bytes[20] = bytes[20]! ^ 0xff; // inside "a"'s body
    fs.writeFileSync(bad, bytes);
    const corrupt = cli(["get", bad, "a", "-o", dest]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.err).toContain("DES_CHECKSUM");
    expect(fs.readFileSync(dest, "utf8")).toBe("precious");
    const toStdout = cli(["cat", bad, "a"]);
    expect(toStdout.code).toBe(1);
    expect(toStdout.out).toBe("");
    const self = cli(["get", archive, "a", "-o", archive]);
    expect(self.code).toBe(1);
    expect(fs.readFileSync(archive).length).toBe(bytes.length);
    expect(cli(["get", archive, "b", "-o", dest]).code).toBe(0);
    expect(fs.readFileSync(dest, "utf8")).toBe("B".repeat(1000));
    expect(fs.readdirSync(dir).filter((n) => n.includes(".des-tmp"))).toEqual([]);
  });
});

describe("extract goes on past a damaged entry", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  const body = (i: number): string => `file number ${i} `.repeat(20);

  for (const damaged of [["f3.txt"], ["f3.txt", "f6.txt", "f7.txt"]]) {
    it(`${damaged.join(", ")} damaged: reported, left out, every other entry, link and folder mode extracted, exit 1`, async () => {
      const tag = damaged.length;
      const good = path.join(dir, `good-${tag}.des`);
      await craft(good, [
        ["z/", "", fsMetaValue({ kind: "directory", mode: 0o700, mtimeSeconds: 1_600_000_000, mtimeNanos: 0 })],
        ...Array.from({ length: 10 }, (_, i): Spec => [`f${i}.txt`, body(i)]),
        ["l", link("f9.txt"), symlinkMeta],
      ]);
      const bytes = fs.readFileSync(good);
      const r0 = await DesReader.open(good);
      for (const name of damaged) bytes[(await r0.stat(name)).offset + 5]! ^= 0xff;
      await r0.close();
      const archive = path.join(dir, `damaged-${tag}.des`);
      fs.writeFileSync(archive, bytes);
      const out = path.join(dir, `out-damaged-${tag}`);
      const r = cli(["extract", archive, "-C", out]);
      expect(r.code).toBe(1);
      for (const name of damaged) {
        expect(r.err).toContain(`des-pack: ${name}: checksum mismatch in data of entry "${name}"`);
        expect(fs.existsSync(path.join(out, name))).toBe(false);
      }
      expect(r.err).toContain(`; ${damaged.length} failed`);
      expect(r.err).not.toMatch(/at .*\.js:\d+/);
      const want = Array.from({ length: 10 }, (_, i) => `f${i}.txt`).filter((n) => !damaged.includes(n));
      expect(tree(out)).toEqual([...want, "l", "z"].sort());
      for (const n of want) expect(fs.readFileSync(path.join(out, n), "utf8")).toBe(body(Number(n.slice(1, -4))));
      expect(fs.readlinkSync(path.join(out, "l"))).toBe("f9.txt");
      expect(fs.statSync(path.join(out, "z")).mode & 0o777).toBe(0o700);
    });
  }
});
