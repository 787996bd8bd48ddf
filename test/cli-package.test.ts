import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { builtCli } from "./helpers/cli.js";

describe("package", () => {
  it("ships a LICENSE and dist without source maps; the CLI imports the library chunks, no second copy", () => {
    builtCli();
    const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const files = (JSON.parse(r.stdout) as { files: { path: string; size: number }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain("LICENSE");
    expect(files).toContain("dist/cli.js");
    expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    expect(pkg.scripts.prepare).toBeDefined();
    expect(pkg.scripts.prepack).toBeDefined();
    const cliText = fs.readFileSync(path.resolve(pkg.bin["des-pack"]!), "utf8");
    expect(cliText.startsWith("#!/usr/bin/env node\n")).toBe(true);
    // The reader class is defined once, in a shared chunk, and the CLI imports it.
    const defines = /var DesReader = class\b|class DesReader\b/;
    expect(cliText).not.toMatch(defines);
    const defining = fs
      .readdirSync("dist")
      .filter((f) => f.endsWith(".js") && defines.test(fs.readFileSync(path.join("dist", f), "utf8")));
    expect(defining).toHaveLength(1);
    // Reached through the CLI's imports (static, or the lazily loaded commands), never inlined.
    const reached = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      const text = fs.readFileSync(path.join("dist", file), "utf8");
      for (const m of text.matchAll(/(?:from |import |import\()'\.\/([^']+\.js)'/g)) visit(m[1]!);
    };
    visit(path.basename(pkg.bin["des-pack"]!));
    expect(reached.has(defining[0]!)).toBe(true);
  });

  it("plain ls loads the reader alone: no argument parser, glob matcher, writer, Locations or crypto", () => {
    builtCli();
    const cliText = fs.readFileSync("dist/cli.js", "utf8");
    const entry = /import\('\.\/(quick-list-[^']+\.js)'\)/.exec(cliText)?.[1];
    expect(entry).toBeDefined();
    // The static import closure of the plain-ls module: what `des-pack ls x.des` parses before its first line.
    const files = new Set<string>();
    const bare = new Set<string>();
    let bytes = 0;
    const visit = (file: string): void => {
      if (files.has(file)) return;
      files.add(file);
      const text = fs.readFileSync(path.join("dist", file), "utf8");
      bytes += text.length;
      for (const m of text.matchAll(/^import (?:[^'\n]* from )?'([^']+)';$/gm))
        if (m[1]!.startsWith("./")) visit(m[1]!.slice(2));
        else bare.add(m[1]!);
    };
    visit(entry!);
    const sources = [...files].flatMap((f) =>
      [...fs.readFileSync(path.join("dist", f), "utf8").matchAll(/^\/\/ (src\/\S+)$/gm)].map((m) => m[1]!),
    );
    expect(sources).toContain("src/read/reader.ts");
    expect(sources.filter((s) => /^src\/(write|locations|store|cache|s3|redis|naming)\//.test(s))).toEqual([]);
    expect(sources).not.toContain("src/cli/commands/read.ts");
    for (const m of ["commander", "picomatch", "crypto", "@aws-sdk/client-s3"]) expect(bare.has(m), m).toBe(false);
    // The hash is instantiated from the package's .wasm file directly; its JavaScript loader is imported only as a fallback.
    expect(bare.has("xxhash-wasm")).toBe(false);
    // The whole library chunk it used to load was over 360 KB.
    expect(bytes).toBeLessThan(200_000);
  });
});
