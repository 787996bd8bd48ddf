/**
 * Run by lazy-loading.test.ts, bundled with esbuild and started with plain
 * node (no loader, so the built-ins it reports are the library's own): which
 * optional parts are loaded after each step of reading an archive. Prints
 * one JSON line.
 */
import { DesReader } from "../src/index.js";
import { metaCodecReady } from "../src/format/meta.js";

/** Node's list of the internal modules it has loaded (not in its types). */
const loadList = (): readonly string[] => (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
const has = (m: string): boolean => loadList().includes(`NativeModule ${m}`);
const state = (): Record<string, boolean> => ({
  zlib: has("zlib"),
  workerThreads: has("worker_threads"),
  metaCodec: metaCodecReady(),
});

const steps: Record<string, unknown> = { imported: state() };
const r = await DesReader.open(process.argv[2]!);
const plain = await r.get("plain");
steps.plainGet = { ...state(), bytes: plain.length };
const zipped = await r.get("zipped");
steps.zippedGet = { ...state(), bytes: zipped.length };
const meta = await r.getMeta("with-meta");
steps.getMeta = { ...state(), meta };
await r.close();
process.stdout.write(JSON.stringify(steps));
