/**
 * Memory scenarios of the reader, one per child process (so each starts from
 * a clean heap): prints one JSON line. Used by read-memory.test.ts; run by
 * hand with `node --expose-gc --import tsx test/read-memory-child.mts <scenario> ...`.
 */
import fs from "node:fs";
import { DesReader, DesWriter, MemorySink, MemorySource } from "../src/index.js";

const MIB = 2 ** 20;
const [scenario, ...args] = process.argv.slice(2);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const maxRss = (): number => process.resourceUsage().maxRSS * 1024;

async function* zeros(size: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(MIB);
  for (let done = 0; done < size; done += MIB) yield done + MIB <= size ? chunk : chunk.subarray(0, size - done);
}

async function main(): Promise<Record<string, unknown>> {
  switch (scenario) {
    case "make-zeros": {
      // <file> <entries> <MiB each>: entries of zeros, gzip-compressed (a few KB on disk each).
      const [file, count, mib] = [args[0]!, Number(args[1]), Number(args[2])];
      await DesWriter.write(file, { overwrite: true, compress: "gzip", compressLevel: 1 }, async (w) => {
        for (let i = 0; i < count; i++) await w.add(`z${i}`, zeros(mib * MIB), { size: mib * MIB });
      });
      return { file, bytes: fs.statSync(file).size };
    }
    case "get-one": {
      // <file> <maxEntryBytes MiB>: one get of z0; peak RSS above the RSS before it.
      const r = await DesReader.open(args[0]!, { maxEntryBytes: Number(args[1]) * MIB });
      gc();
      const before = process.memoryUsage().rss;
      const b = await r.get("z0");
      const peak = maxRss();
      return {
        size: b.length,
        peakAboveMiB: Math.round((peak - before) / MIB),
        ratio: +((peak - before) / b.length).toFixed(2),
      };
    }
    case "iter-many": {
      // <file> <count> <maxBatchBytes MiB>: iterMany over every entry, each dropped at once.
      const r = await DesReader.open(args[0]!, { maxEntryBytes: 2 ** 31, maxBatchBytes: Number(args[2]) * MIB });
      const names = Array.from({ length: Number(args[1]) }, (_, i) => `z${i}`);
      let refused = "";
      await r.getMany(names).catch((e: { code?: string }) => (refused = e.code ?? "?"));
      gc();
      const before = process.memoryUsage().rss;
      let total = 0;
      for await (const [, b] of r.iterMany(names)) total += b.length;
      const peak = maxRss();
      return { total, getMany: refused, peakAboveMiB: Math.round((peak - before) / MIB) };
    }
    case "gets": {
      // <count>: that many concurrent gets of 160-byte entries (16 MB of bodies at 100,000).
      const n = Number(args[0]);
      const sink = new MemorySink();
      const body = new Uint8Array(160);
      await DesWriter.write(sink, {}, async (w) => {
        for (let i = 0; i < n; i++) await w.add(`e${String(i).padStart(7, "0")}`, body);
      });
      const r = await DesReader.open(new MemorySource(sink.bytes()));
      await r.list(); // index pages decoded: what is measured is the pending calls
      const names = Array.from({ length: n }, (_, i) => `e${String(i).padStart(7, "0")}`);
      gc();
      const base = process.memoryUsage();
      let peak = 0;
      const sample = (): void => {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
      };
      const t0 = performance.now();
      const pending = names.map((nm) => r.get(nm));
      sample();
      const timer = setInterval(sample, 1);
      const out = await Promise.all(pending);
      sample();
      clearInterval(timer);
      return {
        gets: n,
        bodies: out.length * 160,
        peakMiB: +(peak / MIB).toFixed(1),
        bytesPerGet: Math.round(peak / n),
        ms: Math.round(performance.now() - t0),
      };
    }
    case "list": {
      // <count>: list() of that many entries; heap held by the result beyond its strings' own characters.
      const n = Number(args[0]);
      const sink = new MemorySink();
      await DesWriter.write(sink, {}, async (w) => {
        const body = new Uint8Array(1);
        for (let i = 0; i < n; i++) await w.add(`f${String(i).padStart(7, "0")}`, body);
      });
      const mem = new MemorySource(sink.bytes());
      // Reads answer on a later tick (like a disk), so the sampling timer runs while list() works.
      const ticking = {
        key: mem.key,
        size: mem.size,
        hints: { maxGap: 4096, maxSpan: MIB, concurrency: 8 },
        read: (o: number, l: number) => new Promise<Uint8Array>((res) => setImmediate(() => res(mem.read(o, l)))),
        readTail: (l: number) => mem.readTail(l),
      };
      const r = await DesReader.open(ticking, { pageCacheBytes: 0 });
      gc();
      const before = process.memoryUsage().heapUsed;
      // Peak heap while list() runs, sampled between page rounds (the source answers on later ticks).
      let listPeak = 0;
      const timer = setInterval(() => (listPeak = Math.max(listPeak, process.memoryUsage().heapUsed - before)), 1);
      const names = await r.list();
      clearInterval(timer);
      listPeak = Math.max(listPeak, process.memoryUsage().heapUsed - before);
      gc();
      const held = process.memoryUsage().heapUsed - before;
      let chars = 0;
      for (const s of names) chars += s.length;
      let entries = 0;
      gc();
      const beforeWalk = process.memoryUsage().heapUsed;
      let walkPeak = 0;
      for await (const st of r.entries()) {
        entries++;
        if ((entries & 4095) === 0) walkPeak = Math.max(walkPeak, process.memoryUsage().heapUsed - beforeWalk);
        void st;
      }
      return {
        entries: names.length,
        walked: entries,
        listPeakBytesPerEntry: Math.round(listPeak / n),
        listPeakBeyondNameCharsPerEntry: Math.round((listPeak - chars) / n),
        heldBytesPerEntry: Math.round(held / n),
        beyondNameCharsPerEntry: Math.round((held - chars) / n),
        entriesPeakMiB: +(walkPeak / MIB).toFixed(1),
        names,
      };
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

const out = await main();
if (scenario === "list") delete out["names"];
process.stdout.write(`${JSON.stringify(out)}\n`);
