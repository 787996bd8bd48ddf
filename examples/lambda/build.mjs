// Bundles the handler for AWS Lambda (Node.js 20+): one minified ESM file
// plus a lazily loaded chunk for ioredis. `node examples/lambda/build.mjs [outdir]`.
import { build } from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

// Inside the des-pack repository itself, "des-pack" means its sources.
const repo = path.resolve(here, "../..");
const inRepo = (() => {
  try {
    return JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")).name === "des-pack";
  } catch {
    return false;
  }
})();
const fromSources = {
  name: "des-pack-sources",
  setup(b) {
    const entries = {
      "des-pack": "src/index.ts",
      "des-pack/s3": "src/s3/index.ts",
      "des-pack/redis": "src/redis/index.ts",
    };
    b.onResolve({ filter: /^des-pack(\/(s3|redis))?$/ }, (args) => ({ path: path.join(repo, entries[args.path]) }));
  },
};

export async function bundleHandler(outdir = path.join(here, "dist"), extra = {}) {
  return build({
    entryPoints: { handler: path.join(here, "handler.ts") },
    outdir,
    bundle: true,
    splitting: true, // ioredis goes to its own chunk, loaded only when REDIS_URL is set
    format: "esm",
    platform: "node",
    target: "node20",
    minify: true,
    outExtension: { ".js": ".mjs" },
    // Writing only: a reader never loads it (des-pack/s3 imports it lazily).
    external: ["@aws-sdk/lib-storage"],
    // Some CommonJS dependencies call require(): give the ESM bundle one.
    banner: {
      js: "import { createRequire as __desCreateRequire } from 'node:module'; const require = __desCreateRequire(import.meta.url);",
    },
    metafile: true,
    plugins: inRepo ? [fromSources] : [],
    logLevel: "warning",
    ...extra,
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? path.join(here, "dist");
  await bundleHandler(out);
  console.log(`bundled into ${out}`);
}
