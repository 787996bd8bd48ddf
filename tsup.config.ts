import { defineConfig } from "tsup";

export default defineConfig([
  {
    // The library: ESM + CJS + types. Each entry is a subpath export, except
    // the two worker threads: entries of their own so that they are built,
    // type-checked and shipped as files (`dist/<name>.js` / `.cjs`), which
    // the library starts with `new URL("./<name>.js", import.meta.url)`.
    entry: {
      index: "src/index.ts",
      s3: "src/s3/index.ts",
      "file-batch-worker": "src/sources/file-batch-worker.ts",
      "read-ahead-worker": "src/write/read-ahead-worker.ts",
    },
    format: ["esm", "cjs"],
    dts: { entry: { index: "src/index.ts", s3: "src/s3/index.ts" } },
    sourcemap: true,
    clean: true,
    target: "node20",
    splitting: true,
    treeshake: true,
    // `import.meta.url` in the CJS build (where the workers are found).
    shims: true,
  },
  {
    // The command line: ESM only (it uses top-level await). It starts the
    // same worker files, from the library build beside it in dist/.
    entry: { cli: "src/cli/bin.ts" },
    format: ["esm"],
    sourcemap: true,
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
  },
]);
