import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DesReader } from "../src/read/reader.js";
import { DesWriter } from "../src/write/writer.js";
import { builtCli, cli, cliChild } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

describe("command line: usage, help, errors", () => {
  const dir = tempDir();
  // Big enough that ls and cat outlive a pipe's buffer (so head closes it under them); small enough to extract fast.
  const archive = path.join(dir, "a.des");
  const small = path.join(dir, "small.des");
  beforeAll(async () => {
    builtCli();
    const w = await DesWriter.create(archive);
    await w.addMany(
      Array.from({ length: 20_000 }, (_, i) => [`f${String(i).padStart(5, "0")}`, Buffer.from(`body ${i}\n`)] as const),
    );
    await w.add("blob", Buffer.alloc(1 << 20, 0x61));
    await w.close();
    const s = await DesWriter.create(small);
    await s.addMany(Array.from({ length: 1500 }, (_, i) => [`d${i % 10}/f${i}`, Buffer.from(`body ${i}\n`)] as const));
    await s.close();
  });

  it("bad usage exits 2 with a hint; failures exit 1 with one line and no stack", () => {
    for (const args of [
      ["frobnicate"],
      ["pack"],
      ["get", archive],
      ["ls"],
      ["pack", "--compress", "zstd", dir, "x.des"],
      ["extract", archive, "--strip-components", "-1"],
      ["ls", archive, "--bogus"],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(/error|must be/);
    }
    const missing = cli(["ls", path.join(dir, "nope.des")]);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`des-pack: ${path.join(dir, "nope.des")}: no such archive\n`);
    const notDes = path.join(dir, "text.des");
    fs.writeFileSync(notDes, "hello, not an archive at all, just some text".repeat(10));
    const bad = cli(["ls", notDes]);
    expect(bad.code).toBe(1);
    expect(bad.err.trim().split("\n")).toHaveLength(1);
    expect(bad.err).toContain("DES_FORMAT");
    expect(bad.err).not.toMatch(/\n\s+at /);
    expect(cli(["ls", notDes, "--debug"]).err).toMatch(/\n\s+at /);
  });

  it("plain ls (no options, the parser is not loaded) prints what ls with options prints", () => {
    const plain = cli(["ls", small]);
    const parsed = cli(["ls", "-q", small]);
    expect(plain.code).toBe(0);
    expect(plain.out.split("\n").length).toBe(1501);
    expect(plain.out).toBe(parsed.out);
    const some = cli(["list", small, "d3/*"]);
    expect(some.out.trim().split("\n")).toHaveLength(150);
    expect(some.out).toBe(cli(["ls", small, "d3/*", "-q"]).out);
    const missing = cli(["ls", small, "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`des-pack: not in the archive: "nope"\n`);
    expect(cli(["ls", small, "nope", "-q"]).err).toBe(missing.err);
  });

  it("--version, help <command> and <command> --help", () => {
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string };
    const v = cli(["--version"]);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toBe(pkg.version);
    const h1 = cli(["help", "pack"]);
    const h2 = cli(["pack", "--help"]);
    expect(h1.code).toBe(0);
    expect(h2.code).toBe(0);
    expect(h1.out).toContain("--big-file-threshold");
    expect(h1.out).toBe(h2.out);
    expect(cli(["help", "extract"]).out).toContain("--strip-components");
    expect(cli(["--help"]).out).toMatch(/extract[\s\S]*verify/);
  });

  it("plain ls through a pipe that fills: every name once, in order, whole lines (writes block, nothing lost)", async () => {
    // About 4 MB of names: far more than a pipe or socket buffer holds.
    const big = path.join(dir, "names.des");
    const w = await DesWriter.create(big);
    const pad = "n".repeat(56);
    await w.addMany(
      Array.from({ length: 60_000 }, (_, i) => [`${pad}/${String(i).padStart(6, "0")}`, new Uint8Array(0)] as const),
    );
    await w.close();
    const child = spawn(process.execPath, [builtCli(), "ls", big], { stdio: ["ignore", "pipe", "pipe"] });
    const closed = new Promise<number | null>((r) => child.on("close", r));
    const chunks: Buffer[] = [];
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    // Nothing read for a while: the pipe fills and the listing has to wait for it.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 300));
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stdout.resume();
    const code = await closed;
    expect(err).toBe("");
    expect(code).toBe(0);
    const text = Buffer.concat(chunks).toString("utf8");
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    expect(lines).toHaveLength(60_000);
    const r = await DesReader.open(big);
    const names: string[] = [];
    for await (const e of r.entries()) names.push(e.name);
    await r.close();
    expect(lines).toEqual(names);
  });

  it("ls | head and cat | head end quietly (EPIPE)", () => {
    const ls = spawnSync("sh", ["-c", `"${process.execPath}" "${builtCli()}" ls "${archive}" | head -n 2`], {
      encoding: "utf8",
    });
    expect(
      ls.stdout
        .split("\n")
        .slice(0, 2)
        .every((l) => /^(f\d{5}|blob)$/.test(l)),
    ).toBe(true);
    expect(ls.stderr).toBe("");
    const cat = spawnSync(
      "sh",
      ["-c", `"${process.execPath}" "${builtCli()}" cat "${archive}" blob blob blob | head -c 10`],
      { encoding: "utf8" },
    );
    expect(cat.stdout).toBe("aaaaaaaaaa");
    expect(cat.stderr).toBe("");
  });

  it("verify reports ok and exit 0; --json summaries parse", () => {
    const v = cli(["verify", archive]);
    expect(v.code).toBe(0);
    expect(v.out).toContain("20001 entries");
    expect(JSON.parse(cli(["verify", "--json", archive]).out)).toMatchObject({ ok: true, entries: 20001 });
    const out = path.join(dir, "x");
    const j = cli(["extract", small, "-C", out, "--json"]);
    expect(JSON.parse(j.out)).toMatchObject({ command: "extract", files: 1500, failed: 0 });
  });

  it("a pseudo-terminal shows the progress bar; -q and a pipe do not", () => {
    const hasScript = spawnSync("script", ["--version"]).status === 0;
    if (!hasScript) return;
    const out = path.join(dir, "tty");
    const r = spawnSync(
      "script",
      ["-qec", `"${process.execPath}" "${builtCli()}" extract "${small}" -C "${out}"`, "/dev/null"],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\rextracting \[[#.]{20}\] +\d+% \d+\/1500 files, .*\/s ETA/);
    const q = spawnSync(
      "script",
      [
        "-qec",
        `"${process.execPath}" "${builtCli()}" extract -q "${small}" -C "${path.join(dir, "tty-q")}"`,
        "/dev/null",
      ],
      { encoding: "utf8" },
    );
    expect(q.stdout).not.toContain("extracting");
    const piped = cli(["extract", small, "-C", path.join(dir, "piped")]);
    expect(piped.err).not.toContain("\r");
  });
});

describe("Ctrl-C during extract", () => {
  const dir = tempDir();
  const archive = path.join(dir, "big.des");
  beforeAll(async () => {
    builtCli();
    const w = await DesWriter.create(archive, { compress: "gzip", compressLevel: 1 });
    await w.add("small.txt", Buffer.from("small"), { compress: "none" });
    const chunk = Buffer.alloc(1 << 20);
    await w.add(
      "huge.bin",
      (async function* () {
        for (let i = 0; i < 400; i++) yield chunk;
      })(),
    );
    await w.close();
  });

  it("removes the partial file and says what was extracted (exit 130)", async () => {
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    const child = cliChild(["extract", archive, "-C", out]);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    let sawTemp = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (fs.readdirSync(out).some((n) => n.includes(".des-tmp"))) {
        sawTemp = true;
        child.kill("SIGINT");
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const code = await exited;
    expect(sawTemp).toBe(true);
    expect(code).toBe(130);
    expect(err).toMatch(/interrupted: \d+ files, \d+ folders extracted into .*; 1 partial file removed/);
    expect(fs.readdirSync(out).filter((n) => n.includes(".des-tmp"))).toEqual([]);
    expect(fs.existsSync(path.join(out, "huge.bin"))).toBe(false);
  });
});

describe("Ctrl-C during pack", () => {
  const dir = tempDir();
  beforeAll(() => void builtCli());

  it("leaves no temporary file and no archive (exit 130)", async () => {
    const src = path.join(dir, "src");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "small"), "x");
    // A sparse 2 GiB file: streamed by pack, long enough to be interrupted.
    fs.writeFileSync(path.join(src, "huge"), "");
    fs.truncateSync(path.join(src, "huge"), 2 ** 31);
    const outDir = path.join(dir, "out");
    fs.mkdirSync(outDir);
    const child = cliChild(["pack", src, path.join(outDir, "x.des")]);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    let sawTemp = false;
    while (Date.now() < deadline && child.exitCode === null) {
      const tmp = fs.readdirSync(outDir).find((n) => n.endsWith(".tmp"));
      if (tmp && fs.statSync(path.join(outDir, tmp)).size > 1 << 20) {
        sawTemp = true;
        child.kill("SIGINT");
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const code = await exited;
    expect(sawTemp).toBe(true);
    expect(code).toBe(130);
    expect(err).toContain("interrupted: nothing written");
    expect(fs.readdirSync(outDir)).toEqual([]);
  });
});

void spawn;
