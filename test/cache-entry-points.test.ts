import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "dist");
const work = tempDir("des-entries-");
// Child scripts live under the package's node_modules so bare imports resolve as they would in an app.
const childDir = fs.mkdtempSync(path.join(ROOT, "node_modules", ".des-entries-"));
afterAll(() => fs.rmSync(childDir, { recursive: true, force: true }));

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** These tests are about the built package: build it when dist is missing or older than src (CI builds first). */
beforeAll(() => {
  const built = ["s3.js", "s3.cjs", "redis.js", "redis.d.ts", "index.js"].map((f) => path.join(DIST, f));
  const stale = built.some((f) => !fs.existsSync(f) || fs.statSync(f).mtimeMs < newestMtime(path.join(ROOT, "src")));
  if (stale)
    execFileSync(process.execPath, [path.join(ROOT, "node_modules/tsup/dist/cli-default.js")], {
      cwd: ROOT,
      stdio: "ignore",
    });
}, 120_000);

/** A module hook that makes `@aws-sdk/lib-storage` impossible to resolve, as in a deployment without it. */
const HIDE = `export async function resolve(specifier, context, next) {
  if (specifier === "@aws-sdk/lib-storage" || specifier.startsWith("@aws-sdk/lib-storage/")) {
    const e = new Error("Cannot find package '@aws-sdk/lib-storage'");
    e.code = "ERR_MODULE_NOT_FOUND";
    throw e;
  }
  return next(specifier, context);
}`;

function runHidden(code: string, ext: "mjs" | "cjs"): { status: number | null; out: string; err: string } {
  const hook = path.join(work, "hide-lib-storage.mjs");
  fs.writeFileSync(hook, HIDE);
  const register = path.join(work, "register.mjs");
  fs.writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`,
  );
  const script = path.join(childDir, `child.${ext}`);
  fs.writeFileSync(script, code);
  const r = spawnSync(process.execPath, ["--import", pathToFileURL(register).href, script], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const CHILD_BODY = (load: string): string => `
${load}
const { S3Client } = s3sdk;
const out = { hasReader: typeof s3.S3DesReader.open === "function", hasSource: typeof s3.S3Source === "function" };
const client = new S3Client({ region: "us-east-1", endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
try {
  await s3.S3Sink.create({ client, bucket: "b", key: "k.des" });
  out.write = "no error";
} catch (e) {
  out.write = e.code;
  out.message = e.message;
}
try {
  await import("@aws-sdk/lib-storage");
  out.hidden = false;
} catch {
  out.hidden = true;
}
console.log(JSON.stringify(out));
`;

describe("reading from S3 does not need @aws-sdk/lib-storage", () => {
  it("the built des-pack/s3 (ESM) imports without it; writing says what is missing with a typed error", () => {
    const r = runHidden(
      CHILD_BODY(
        `const s3 = await import(${JSON.stringify(pathToFileURL(path.join(DIST, "s3.js")).href)});\nconst s3sdk = await import("@aws-sdk/client-s3");`,
      ),
      "mjs",
    );
    expect(r.err).not.toMatch(/Error|Cannot find/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.out) as Record<string, unknown>;
    expect(out).toMatchObject({ hasReader: true, hasSource: true, hidden: true, write: "DES_UNSUPPORTED" });
    expect(out.message).toMatch(/@aws-sdk\/lib-storage/);
  });

  it("the built des-pack/s3 (CJS) requires without it too", () => {
    const r = runHidden(
      `(async () => {\n${CHILD_BODY(`const s3 = require(${JSON.stringify(path.join(DIST, "s3.cjs"))});\nconst s3sdk = require("@aws-sdk/client-s3");`)}\n})();`,
      "cjs",
    );
    expect(r.err).not.toMatch(/Error|Cannot find/);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ hasReader: true, hidden: true, write: "DES_UNSUPPORTED" });
  });

  it("no built file imports lib-storage statically", () => {
    for (const f of fs.readdirSync(DIST).filter((x) => /\.(c?js)$/.test(x))) {
      const text = fs.readFileSync(path.join(DIST, f), "utf8");
      expect(text, f).not.toMatch(/(?:^|\n)\s*import[^()]*?from\s*["']@aws-sdk\/lib-storage["']/);
      expect(text, f).not.toMatch(/require\(\s*["']@aws-sdk\/lib-storage["']\s*\)/);
    }
  });
});

describe("des-pack/redis entry", () => {
  it("loads from ESM and CJS; the root entry does not load ioredis", () => {
    const esm = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(pathToFileURL(path.join(DIST, "redis.js")).href)}); console.log(typeof m.RedisIndexCache);`,
      ],
      { encoding: "utf8" },
    );
    expect(esm.stdout.trim()).toBe("function");
    const cjs = spawnSync(
      process.execPath,
      ["-e", `console.log(typeof require(${JSON.stringify(path.join(DIST, "redis.cjs"))}).RedisIndexCache)`],
      { encoding: "utf8" },
    );
    expect(cjs.stdout.trim()).toBe("function");
    const root = fs.readFileSync(path.join(DIST, "index.js"), "utf8");
    expect(root).not.toMatch(/ioredis|@aws-sdk/);
  });
});

describe("TypeScript with moduleResolution node10", () => {
  it("type-checks imports of des-pack, des-pack/s3 and des-pack/redis against the built types (typesVersions)", () => {
    const proj = path.join(work, "ts-node10");
    fs.mkdirSync(path.join(proj, "node_modules"), { recursive: true });
    fs.symlinkSync(ROOT, path.join(proj, "node_modules", "des-pack"), "dir");
    fs.writeFileSync(
      path.join(proj, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "commonjs",
          moduleResolution: "node10",
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ["index.ts"],
      }),
    );
    fs.writeFileSync(
      path.join(proj, "index.ts"),
      `import { DesReader, MemoryIndexCache, FsIndexCache, TieredIndexCache } from "des-pack";
import type { IndexCache } from "des-pack";
import { S3DesReader, S3Source } from "des-pack/s3";
import { RedisIndexCache } from "des-pack/redis";
import type { RedisIndexCacheStats } from "des-pack/redis";
const tiers: IndexCache[] = [new MemoryIndexCache({ maxBytes: 1 }), new FsIndexCache({ dir: "d", maxBytes: 1 }), new RedisIndexCache({ url: "redis://x" })];
const cache = new TieredIndexCache(tiers);
const trips: number = (tiers[2] as RedisIndexCache).stats().roundTrips;
const s: RedisIndexCacheStats | undefined = undefined;
// @ts-expect-error keyPrefix is a string: proves the types are real, not any
new RedisIndexCache({ url: "redis://x", keyPrefix: 1 });
export const used = [DesReader, S3DesReader, S3Source, cache, trips, s];
`,
    );
    const tsc = path.join(ROOT, "node_modules/typescript/bin/tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", proj], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
    // And the same project without typesVersions' help fails, so the test is meaningful.
    const bad = path.join(proj, "bad.ts");
    fs.writeFileSync(bad, `import { S3Source } from "des-pack/dist/nowhere";\nexport const x = S3Source;\n`);
    const r2 = spawnSync(
      process.execPath,
      [tsc, "--noEmit", "--moduleResolution", "node10", "--module", "commonjs", "--types", "", bad],
      { encoding: "utf8", cwd: proj },
    );
    expect(r2.status).not.toBe(0);
  });
});
