import fs from "node:fs";
import { defineConfig } from "tsup";

const { version } = JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string };

// The two worker threads are entries of their own so that they are built,
// type-checked and shipped as files (`dist/<name>.js` / `.cjs`), which the
// library starts with `new URL("./<name>.js", import.meta.url)`.
const workers = {
  "file-batch-worker": "src/sources/file-batch-worker.ts",
  "read-ahead-worker": "src/write/read-ahead-worker.ts",
};

// No source maps in the package: they were most of its size, and the code is
// not minified, so stack traces already point at readable lines.
export default defineConfig([
  {
    // ESM: the library entries, the workers and the command line in one
    // build, so the CLI imports the library's shared chunks (and starts the
    // same worker files) instead of bundling its own copy.
    entry: {
      index: "src/index.ts",
      s3: "src/s3/index.ts",
      redis: "src/redis/index.ts",
      cli: "src/cli/bin.ts",
      ...workers,
    },
    format: ["esm"],
    dts: { entry: { index: "src/index.ts", s3: "src/s3/index.ts", redis: "src/redis/index.ts" } },
    sourcemap: false,
    clean: true,
    target: "node20",
    splitting: true,
    treeshake: true,
    define: { __DES_PACK_VERSION__: JSON.stringify(version) },
  },
  {
    // CJS for require(): the library entries and the workers.
    entry: { index: "src/index.ts", s3: "src/s3/index.ts", redis: "src/redis/index.ts", ...workers },
    format: ["cjs"],
    dts: { entry: { index: "src/index.ts", s3: "src/s3/index.ts", redis: "src/redis/index.ts" } },
    sourcemap: false,
    clean: false,
    target: "node20",
    splitting: true,
    treeshake: true,
    // `import.meta.url` in the CJS build (where the workers are found).
    shims: true,
  },
]);
