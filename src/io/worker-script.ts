import fs from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Worker, WorkerOptions } from "node:worker_threads";

type WorkerThreads = typeof import("node:worker_threads");
let threads: WorkerThreads | undefined;

/**
 * node:worker_threads, loaded when the first worker starts: a reader that
 * never starts one (S3, HTTP, synchronous file reads) does not pay for
 * loading it (about 1.5 ms of CPU at import, a cold Lambda's included).
 * A built-in resolves without the file system, in a bundle too.
 */
function workerThreads(): WorkerThreads {
  return (threads ??= createRequire(import.meta.url)("node:worker_threads") as WorkerThreads);
}

/**
 * Starts a worker thread from a module of its own, found relative to the
 * module that starts it (`base` is that module's `import.meta.url`):
 * - from the build, `dist/<name>.js` (ESM) or `dist/<name>.cjs` (CJS), which
 *   tsup builds as entries of their own next to the library's chunks;
 * - from the TypeScript sources (tests, `tsx`), `<name>.ts` beside the
 *   caller, compiled once per process with esbuild (a dev dependency of the
 *   build) and evaluated, so no loader has to be installed in the thread.
 * Throws synchronously when the file is missing (a bundle that did not copy
 * it), so callers can fall back to reading on the main thread.
 */
export function startWorker(base: string, name: string, opts: WorkerOptions = {}): Worker {
  const { Worker } = workerThreads();
  if (/\.[cm]?ts$/.test(base)) return new Worker(compiled(new URL(`./${name}.ts`, base)), { ...opts, eval: true });
  const url = new URL(`./${name}${base.endsWith(".cjs") ? ".cjs" : ".js"}`, base);
  if (url.protocol === "file:" && !fs.existsSync(fileURLToPath(url)))
    throw new Error(`worker module ${url.href} is missing`);
  return new Worker(url, opts);
}

const cache = new Map<string, string>();

interface Esbuild {
  transformSync(
    code: string,
    opts: { loader: "ts"; format: "cjs"; target: string; sourcefile: string },
  ): { code: string };
}

function compiled(url: URL): string {
  let code = cache.get(url.href);
  if (code === undefined) {
    const file = fileURLToPath(url);
    const esbuild = createRequire(url)("esbuild") as Esbuild;
    const js = esbuild.transformSync(fs.readFileSync(file, "utf8"), {
      loader: "ts",
      format: "cjs",
      target: "node20",
      sourcefile: file,
    }).code;
    // An evaluated worker has `require` but no module object of its own.
    code = `(function (module, exports) {\n${js}\n})({ exports: {} }, {});`;
    cache.set(url.href, code);
  }
  return code;
}
