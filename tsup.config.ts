import fs from "node:fs";
import { defineConfig } from "tsup";

const { version } = JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string };

// No source maps in the package: they were most of its size, and the code is
// not minified, so stack traces already point at readable lines.
export default defineConfig([
  {
    // ESM: the library entries and the command line in one build, so the CLI
    // imports the library's shared chunks instead of bundling its own copy.
    entry: { index: "src/index.ts", s3: "src/s3/index.ts", cli: "src/cli/bin.ts" },
    format: ["esm"],
    dts: { entry: { index: "src/index.ts", s3: "src/s3/index.ts" } },
    sourcemap: false,
    clean: true,
    target: "node20",
    splitting: true,
    treeshake: true,
    define: { __DES_PACK_VERSION__: JSON.stringify(version) },
  },
  {
    // CJS for require(): the library entries only.
    entry: { index: "src/index.ts", s3: "src/s3/index.ts" },
    format: ["cjs"],
    dts: true,
    sourcemap: false,
    clean: false,
    target: "node20",
    splitting: true,
    treeshake: true,
  },
]);
