import { defineConfig } from "tsup";

export default defineConfig([
  {
    // The library: ESM + CJS + types. Each entry is a subpath export.
    entry: { index: "src/index.ts", s3: "src/s3/index.ts", redis: "src/redis/index.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    splitting: true,
    treeshake: true,
  },
  {
    // The command line: ESM only (it uses top-level await).
    entry: { cli: "src/cli/bin.ts" },
    format: ["esm"],
    sourcemap: true,
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
  },
]);
