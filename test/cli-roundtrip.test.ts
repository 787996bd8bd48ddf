import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader } from "../src/read/reader.js";
import { fileStat } from "../src/read/fs-stat.js";
import { builtCli, cli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

/** A tree with what tar keeps: modes, mtimes, symlinks, empty folders, a hard link. */
function makeTree(root: string): void {
  const w = (rel: string, body: string | Buffer, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), body);
    fs.chmodSync(path.join(root, rel), mode);
  };
  w("a.txt", "alpha\n");
  w("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755);
  w("secret/key", "private", 0o600);
  w("deep/er/still/b.bin", Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 255)));
  w("big.bin", Buffer.alloc(5 << 20, 7)); // streamed by pack (over 1 MiB); extract moves it to a writer thread (over a slot)
  w("ünïcode name.txt", "ü");
  w("line\nbreak", "newline in the name");
  fs.mkdirSync(path.join(root, "empty/nested"), { recursive: true });
  fs.mkdirSync(path.join(root, "private-dir"), { mode: 0o700 });
  fs.chmodSync(path.join(root, "private-dir"), 0o700);
  fs.symlinkSync("../a.txt", path.join(root, "bin/link-to-a"));
  fs.symlinkSync("deep/er", path.join(root, "dirlink"));
  fs.linkSync(path.join(root, "a.txt"), path.join(root, "hard-a"));
  const t = new Date("2021-03-04T05:06:07.250Z");
  for (const rel of ["a.txt", "bin/run.sh", "secret/key", "big.bin", "empty/nested", "empty", "deep/er/still"])
    fs.utimesSync(path.join(root, rel), t, t);
  fs.lutimesSync(path.join(root, "bin/link-to-a"), t, t);
}

interface Seen {
  kind: string;
  mode: number;
  mtime: number;
  target?: string;
  ino?: number;
}

/** What matters of a tree, by relative path (links not followed). */
function snapshot(root: string): Map<string, Seen> {
  const out = new Map<string, Seen>();
  const walk = (dir: string, prefix: string): void => {
    for (const e of fs.readdirSync(dir)) {
      const full = path.join(dir, e);
      const st = fs.lstatSync(full);
      const rel = prefix + e;
      const kind = st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file";
      out.set(rel, {
        kind,
        mode: kind === "link" ? 0 : st.mode & 0o7777,
        mtime: kind === "dir" || kind === "file" ? Math.round(st.mtimeMs) : 0,
        ...(kind === "link" ? { target: fs.readlinkSync(full) } : {}),
      });
      if (kind === "dir") walk(full, `${rel}/`);
    }
  };
  walk(root, "");
  return out;
}

describe("pack then extract gives the same tree back", () => {
  const dir = tempDir();
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  makeTree(src);
  beforeAll(() => void builtCli());

  it("diff -r clean; modes, mtimes, symlinks, empty folders and hard links kept", async () => {
    const archive = path.join(dir, "t.des");
    const packed = cli(["pack", src, archive]);
    expect(packed.code, packed.err).toBe(0);
    const out = path.join(dir, "out");
    const ex = cli(["extract", archive, "-C", out]);
    expect(ex.code, ex.err).toBe(0);
    const diff = spawnSync("diff", ["-r", "--no-dereference", src, out], { encoding: "utf8" });
    expect(diff.stdout + diff.stderr).toBe("");
    expect(diff.status).toBe(0);
    expect(snapshot(out)).toEqual(snapshot(src));
    expect(fs.statSync(path.join(out, "hard-a")).ino).toBe(fs.statSync(path.join(out, "a.txt")).ino);
    expect(fs.statSync(path.join(out, "secret/key")).mode & 0o777).toBe(0o600);
    // The library sees the same through fileStat.
    const r = await DesReader.open(archive);
    const st = await fileStat(r, "bin/run.sh");
    expect(st.kind).toBe("file");
    expect(st.mode).toBe(0o755);
    expect(st.mtimeMs).toBe(Date.parse("2021-03-04T05:06:07.250Z"));
    expect((await fileStat(r, "bin/link-to-a")).kind).toBe("symlink");
    expect(Buffer.from(await r.get("bin/link-to-a")).toString()).toBe("../a.txt");
    expect((await fileStat(r, "empty/nested/")).kind).toBe("directory");
    expect((await fileStat(r, "hard-a")).linkTo).toBe("a.txt");
    await r.close();
  });

  it("--strip-components, names and globs select and rename", () => {
    const archive = path.join(dir, "t.des");
    const out = path.join(dir, "strip");
    expect(cli(["extract", archive, "deep", "-C", out, "--strip-components", "2"]).code).toBe(0);
    expect(fs.readdirSync(out)).toEqual(["still"]);
    const out2 = path.join(dir, "glob");
    expect(cli(["extract", archive, "*.txt", "-C", out2]).code).toBe(0);
    expect(fs.readdirSync(out2).sort()).toEqual(["a.txt", "ünïcode name.txt"]);
    const missing = cli(["extract", archive, "nope", "-C", out2]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('not in the archive: "nope"');
  });

  it("--no-same-permissions applies the umask", () => {
    const archive = path.join(dir, "t.des");
    const out = path.join(dir, "umask");
    const r = spawnSync(
      "sh",
      [
        "-c",
        `umask 077 && "${process.execPath}" "${builtCli()}" extract "${archive}" -C "${out}" --no-same-permissions`,
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(path.join(out, "bin/run.sh")).mode & 0o777).toBe(0o700);
  });

  it("ls -l shows mode, size, time, codec; names are escaped; --json is one object per entry", () => {
    const archive = path.join(dir, "t.des");
    const l = cli(["ls", "-l", archive]);
    expect(l.code).toBe(0);
    expect(l.out).toMatch(/^-rwxr-xr-x +18 2021-03-0\d \d\d:\d\d none +bin\/run\.sh$/m);
    expect(l.out).toMatch(/^lrwxrwxrwx +8 .* bin\/link-to-a -> \.\.\/a\.txt$/m);
    expect(l.out).toContain("line\\nbreak");
    expect(l.out).not.toContain("line\nbreak");
    const j = cli(["ls", "--json", archive]);
    const rows = j.out
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x) as { name: string; kind: string; mode?: string });
    expect(rows.find((x) => x.name === "secret/key")).toMatchObject({ kind: "file", mode: "0600" });
    expect(rows.find((x) => x.name === "line\nbreak")).toBeDefined();
    const info = cli(["info", "--json", archive]);
    expect(JSON.parse(info.out)).toMatchObject({ format: 2, generations: 1, entries: rows.length });
  });

  it("--format 1 says plainly that it needs a flat folder; a flat folder packs", () => {
    const r = cli(["pack", src, path.join(dir, "v1.des"), "--format", "1"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--format 1 archives hold a flat folder only/);
    const flat = path.join(dir, "flat");
    fs.mkdirSync(flat);
    fs.writeFileSync(path.join(flat, "x"), "x");
    fs.chmodSync(path.join(flat, "x"), 0o640);
    expect(cli(["pack", flat, path.join(dir, "v1.des"), "--format", "1"]).code).toBe(0);
    const out = path.join(dir, "v1out");
    expect(cli(["extract", path.join(dir, "v1.des"), "-C", out]).code).toBe(0);
    expect(fs.statSync(path.join(out, "x")).mode & 0o777).toBe(0o640);
  });

  it("--compress auto leaves compressed types and incompressible bodies stored", async () => {
    const t = path.join(dir, "auto");
    fs.mkdirSync(t);
    fs.writeFileSync(path.join(t, "text.txt"), "hello ".repeat(2000));
    fs.writeFileSync(path.join(t, "already.gz"), "hello ".repeat(2000));
    fs.writeFileSync(
      path.join(t, "random.bin"),
      Buffer.from(Array.from({ length: 5000 }, () => Math.floor(Math.random() * 256))),
    );
    const archive = path.join(dir, "auto.des");
    expect(cli(["pack", t, archive, "--compress", "auto"]).code).toBe(0);
    const r = await DesReader.open(archive);
    expect((await r.stat("text.txt")).compression).toBe("gzip");
    expect((await r.stat("already.gz")).compression).toBe("none");
    expect((await r.stat("random.bin")).compression).toBe("none");
    await r.close();
  });

  it("several inputs, -C and --exclude name entries as tar does", async () => {
    const archive = path.join(dir, "multi.des");
    expect(cli(["pack", "-C", src, "bin", "a.txt", archive, "--exclude", "*.sh"]).code).toBe(0);
    const r = await DesReader.open(archive);
    expect(await r.list()).toEqual(["a.txt", "bin/", "bin/link-to-a"]);
    await r.close();
  });

  it("stdin and stdout: pack - | extract -", () => {
    const r = spawnSync(
      "sh",
      [
        "-c",
        `"${process.execPath}" "${builtCli()}" pack "${src}" - -q | "${process.execPath}" "${builtCli()}" extract - -C "${path.join(dir, "piped")}"`,
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(snapshot(path.join(dir, "piped"))).toEqual(snapshot(src));
  });
});

describe("pack refuses what would surprise", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  it("pack . x.des --overwrite does not pack the old x.des into itself", async () => {
    const t = path.join(dir, "self");
    fs.mkdirSync(t);
    fs.writeFileSync(path.join(t, "f"), "f");
    expect(cli(["pack", ".", "x.des"], { cwd: t }).code).toBe(0);
    expect(cli(["pack", ".", "x.des", "--overwrite"], { cwd: t }).code).toBe(0);
    const r = await DesReader.open(path.join(t, "x.des"));
    expect(await r.list()).toEqual(["f"]);
    await r.close();
  });

  it("pack . - > x.des (stdout redirected into the tree) leaves x.des out, and a hard link to x.des too", async () => {
    const t = path.join(dir, "self-stdout");
    fs.mkdirSync(t);
    fs.writeFileSync(path.join(t, "f"), "f");
    fs.writeFileSync(path.join(t, "x.des"), "");
    fs.linkSync(path.join(t, "x.des"), path.join(t, "link-to-x"));
    const fd = fs.openSync(path.join(t, "x.des"), "w");
    try {
      const r = spawnSync(process.execPath, [builtCli(), "pack", ".", "-"], { cwd: t, stdio: ["ignore", fd, "pipe"] });
      expect(r.status, r.stderr?.toString()).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    const r = await DesReader.open(path.join(t, "x.des"));
    expect((await r.list()).filter((n) => !n.endsWith("/"))).toEqual(["f"]);
    await r.close();
  });

  it("pack src /nonexistent/x.des creates no folder; pack src s3://... writes no local s3: path", () => {
    const t = path.join(dir, "src");
    fs.mkdirSync(t);
    fs.writeFileSync(path.join(t, "f"), "f");
    const missing = path.join(dir, "nonexistent", "x.des");
    const r = cli(["pack", t, missing]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not exist/);
    expect(fs.existsSync(path.dirname(missing))).toBe(false);
    const s3 = cli(["pack", t, "s3://bucket/x.des", "--endpoint", "http://127.0.0.1:9"], {
      cwd: dir,
      env: { AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "y", AWS_MAX_ATTEMPTS: "1" },
    });
    expect(s3.code).toBe(1);
    expect(fs.existsSync(path.join(dir, "s3:"))).toBe(false);
  });

  it("packs a file whose stat size is 0 but that has content (procfs)", async () => {
    if (!fs.existsSync("/proc/self/status")) return;
    const archive = path.join(dir, "proc.des");
    const r = cli(["pack", "-C", "/proc/self", "status", "cmdline", archive, "--no-metadata"]);
    expect(r.code, r.err).toBe(0);
    const rd = await DesReader.open(archive);
    const body = Buffer.from(await rd.get("status")).toString();
    expect(body).toMatch(/^Name:\s/);
    expect(body).toMatch(/VmPeak|Pid:/);
    await rd.close();
    // Over the 64 KiB first read: stored whole, not cut at 65,536 bytes.
    const bigger = path.join(dir, "smaps.des");
    expect(cli(["pack", "-C", "/proc/self", "smaps", bigger, "--no-metadata"]).code).toBe(0);
    const r2 = await DesReader.open(bigger);
    const smaps = Buffer.from(await r2.get("smaps")).toString();
    if (smaps.length > 65_536) expect(smaps.endsWith("\n")).toBe(true);
    expect(smaps.length).not.toBe(65_536);
    await r2.close();
  });
});
