/**
 * Runs one packing job in its own process so its peak RSS is its own, and
 * prints one line of JSON on stdout:
 *
 *   node --import tsx bench/pack-child.ts <mode> <treeRoot> <out.des> [limit]
 *
 * Modes:
 * - `packDirectory`: what the README tells users to do for a folder
 *   (`packDirectory(root, out)`): walks the tree, sorts it, reads ahead,
 *   writes, fsyncs, renames. Timed from the call to its return, so the walk
 *   is included (tar walks too).
 * - `add-loop`: the plain per-file path, `await w.add(name, { path })` for
 *   the first `limit` files in sorted order, for comparison.
 * - `noop`: imports the library and exits; its RSS is the floor of any
 *   child (node + tsx + des-pack).
 */
import fs from "node:fs";
import path from "node:path";
// The writer's modules only: the child measures packing, and must not depend on the read path.
import { listTree, packDirectory } from "../src/write/pack-directory.js";
import { DesWriter } from "../src/write/writer.js";

/** What the child prints on stdout (JSON) for bench/pack.ts. */
export interface ChildResult {
  mode: string;
  ms: number;
  entries: number;
  archiveBytes: number;
  originalBytes: number;
  maxRssBytes: number;
  /** CPU time (user + system, every thread of the process) over the same interval as `ms`. */
  cpuMs: number;
}

async function main(): Promise<void> {
  const [mode, root, out, limitArg] = process.argv.slice(2);
  if (!mode) throw new Error("usage: pack-child.ts <packDirectory|add-loop|noop> <root> <out> [limit]");
  let ms = 0;
  let entries = 0;
  let archiveBytes = 0;
  let originalBytes = 0;
  let cpuMs = 0;
  if (mode === "packDirectory") {
    fs.rmSync(out!, { force: true });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const st = await packDirectory(root!, out!, {});
    ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpuMs = (c.user + c.system) / 1000;
    entries = st.entries;
    archiveBytes = st.archiveBytes;
    originalBytes = st.originalBytes;
  } else if (mode === "add-loop") {
    fs.rmSync(out!, { force: true });
    const limit = Number(limitArg ?? Infinity);
    const t0 = performance.now();
    const files = (await listTree(root!)).slice(0, limit);
    const w = await DesWriter.create(out!);
    for (const f of files) await w.add(f.name, { path: path.join(root!, ...f.name.split("/")) });
    const st = await w.close();
    ms = performance.now() - t0;
    entries = st.entries;
    archiveBytes = st.archiveBytes;
    originalBytes = st.originalBytes;
  } else if (mode !== "noop") {
    throw new Error(`unknown mode ${mode}`);
  }
  // ru_maxrss is in KiB on Linux.
  const result: ChildResult = {
    mode,
    ms,
    entries,
    archiveBytes,
    originalBytes,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuMs,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
