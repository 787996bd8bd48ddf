import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/** Every module reachable from `entry` through static or dynamic imports, and the bare packages they import. */
function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(
      /(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
    )) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts")));
      else packages.add(spec);
    }
  };
  visit(path.resolve(entry));
  return { files, packages };
}

describe("entry points", () => {
  it("the root entry loads no cloud SDK and no Redis client", () => {
    const { files, packages } = importGraph("src/index.ts");
    expect(files.size).toBeGreaterThan(10);
    const heavy = [...packages].filter((p) => p.startsWith("@aws-sdk/") || p === "ioredis");
    expect(heavy).toEqual([]);
    expect([...files].some((f) => f.includes(`${path.sep}s3${path.sep}`))).toBe(false);
  });

  it("package.json exports every built entry with types for import and require", () => {
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8")) as {
      exports: Record<string, unknown>;
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe(">=20");
    const root = pkg.exports["."] as { import: { types: string }; require: { types: string } };
    expect(root.import.types).toMatch(/\.d\.ts$/);
    expect(root.require.types).toMatch(/\.d\.cts$/);
  });
});
