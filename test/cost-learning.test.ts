import http from "node:http";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CostLearner,
  DesReader,
  DesWriter,
  HttpSource,
  MemorySink,
  MemorySource,
  REMOTE_COST,
  REMOTE_HINTS,
  fitCost,
} from "../src/index.js";
import type { RangeSource, ReadObservation } from "../src/index.js";
import { DesInvalidArgumentError, DesIoError } from "../src/errors.js";
import { planReads } from "../src/read/plan.js";
import { bodyOf } from "./helpers/data.js";

const quiet = (n: number, totalMs: number, bytes = 4096): ReadObservation[] =>
  Array.from({ length: n }, () => ({ bytes, totalMs, inFlight: 1 }));

describe("fitCost", () => {
  it("learns nothing before the minimum number of observations", () => {
    expect(fitCost(quiet(15, 80), REMOTE_COST)).toEqual({});
    expect(fitCost(quiet(16, 80), REMOTE_COST).firstByteMs).toBeCloseTo(80 - 4096 / REMOTE_COST.bytesPerMs, 6);
    expect(fitCost(quiet(4, 80), REMOTE_COST, { minSamples: 4 })).toEqual({});
  });

  it("takes the latency from quiet reads, the time to first byte when given, and ignores outliers", () => {
    const obs: ReadObservation[] = [
      ...Array.from({ length: 21 }, (_, i) => ({
        bytes: 1000,
        totalMs: 42 + (i % 3),
        firstByteMs: 40 + (i % 3),
        inFlight: 1,
      })),
      // Outliers: a retry, a GC pause, one slow connection, and invalid records.
      ...Array.from({ length: 4 }, () => ({ bytes: 1000, totalMs: 5000, firstByteMs: 4990, inFlight: 2 })),
      ...Array.from({ length: 4 }, () => ({ bytes: 1000, totalMs: 0.5, firstByteMs: 0.2, inFlight: 1 })),
      { bytes: -1, totalMs: 1, inFlight: 1 },
      { bytes: 10, totalMs: Number.NaN, inFlight: 1 },
      { bytes: 10, totalMs: 5, firstByteMs: 9, inFlight: 1 },
      { bytes: 10, totalMs: 5, inFlight: 0 },
    ];
    expect(fitCost(obs, REMOTE_COST)).toEqual({ firstByteMs: 41 });
  });

  it("takes the per-connection rate from big quiet reads only", () => {
    const obs = [
      ...quiet(11, 30, 2000),
      // 1 MiB in 20 + 100 ms: 10,485.76 bytes per ms.
      ...Array.from({ length: 5 }, () => ({ bytes: 1 << 20, totalMs: 120, firstByteMs: 20, inFlight: 1 })),
    ];
    const fit = fitCost(obs, REMOTE_COST);
    expect(fit.bytesPerMs).toBeCloseTo((1 << 20) / 100, 6);
    // Three big reads are not enough.
    expect(fitCost([...quiet(13, 30, 2000), ...obs.slice(11, 14)], REMOTE_COST).bytesPerMs).toBeUndefined();
  });

  it("sees a server that handles one request at a time as a per-request cost", () => {
    // 16 in flight on a server that takes 12 ms per request, one after another: each waits for the others.
    const obs = Array.from({ length: 32 }, () => ({ bytes: 4096, totalMs: 16 * 12, inFlight: 16 }));
    const fit = fitCost(obs, REMOTE_COST);
    expect(fit.requestCpuMs).toBeCloseTo(12 - 4096 / Infinity, 6);
    expect(fit.firstByteMs).toBeUndefined();
  });

  it("does not raise the per-request cost for busy reads that did not wait", () => {
    // 64 in flight, each taking its 25 ms latency: no evidence of a per-request cost above the model's.
    const obs = Array.from({ length: 32 }, () => ({ bytes: 4096, totalMs: 25.2, inFlight: 64 }));
    expect(fitCost(obs, REMOTE_COST).requestCpuMs).toBe(REMOTE_COST.requestCpuMs);
    // Nor lower it: reads that did not wait are no evidence either way.
    expect(fitCost(obs, { ...REMOTE_COST, requestCpuMs: 5 }).requestCpuMs).toBe(5);
  });

  it("takes the per-request cost from the reads at the highest concurrency", () => {
    // A loaded host: at 64 in flight each read takes 64 ms (1 ms of the wall each); at 8 in flight, 30 ms (3.75 ms each).
    const obs: ReadObservation[] = [
      ...quiet(10, 20),
      ...Array.from({ length: 40 }, () => ({ bytes: 4096, totalMs: 64, inFlight: 64 })),
      ...Array.from({ length: 40 }, () => ({ bytes: 4096, totalMs: 30, inFlight: 8 })),
    ];
    expect(fitCost(obs, { ...REMOTE_COST, clientBytesPerMs: Infinity }).requestCpuMs).toBe(1);
  });

  it("counts the bytes in flight when known for the aggregate rate", () => {
    // One 1 MiB read with three tiny ones: the four carried 1 MiB and a bit in 20 ms, not 4 MiB.
    const big = 1 << 20;
    const obs: ReadObservation[] = [
      ...quiet(12, 20.05, 0),
      ...Array.from({ length: 4 }, () => ({ bytes: big, totalMs: 40, inFlight: 4, bytesInFlight: big + 3000 })),
    ];
    expect(fitCost(obs, REMOTE_COST).clientBytesPerMs).toBeCloseTo((big + 3000) / (40 - 20.05), 3);
  });

  it("learns a shared link from one wave of big reads started together (1, 2, 3, 4 in flight at their starts)", () => {
    // Four reads of 4 MiB sent at once over a 12.5 MB/s link they share: each took 20 ms + 16 MiB / 12,500 bytes per ms.
    const big = 4 << 20;
    const transfer = (4 * big) / 12_500;
    const wave = (n: number): ReadObservation[] =>
      Array.from({ length: 4 }, (_, i) => ({
        bytes: big,
        totalMs: 20.05 + transfer,
        inFlight: i + 1,
        bytesInFlight: n * big,
      }));
    const obs: ReadObservation[] = [...quiet(12, 20.05, 0), ...wave(4)];
    expect(fitCost(obs, REMOTE_COST).clientBytesPerMs).toBeCloseTo(12_500, -1);
  });

  it("learns a shared link from a wave of three big reads (a fourth too small to time)", () => {
    const big = 8 << 20;
    const total = 3 * big + (200 << 10);
    const transfer = total / 12_500;
    const obs: ReadObservation[] = [
      ...quiet(14, 20.05, 0),
      ...Array.from({ length: 3 }, () => ({
        bytes: big,
        totalMs: 20.05 + transfer,
        inFlight: 4,
        bytesInFlight: total,
      })),
    ];
    expect(fitCost(obs, REMOTE_COST).clientBytesPerMs).toBeCloseTo(total / transfer, -1);
    // Two are not enough.
    expect(fitCost(obs.slice(0, -1), REMOTE_COST).clientBytesPerMs).toBeUndefined();
  });

  it("learns an aggregate rate from big busy reads when it binds", () => {
    // 8 reads of 2 MiB in flight, 20 ms latency, the 8 together at 100 MB/s: each takes 20 + 8 x 2 MiB / 100,000.
    const big = 2 << 20;
    const transfer = (8 * big) / 100_000;
    const obs: ReadObservation[] = [
      ...quiet(10, 20.05),
      ...Array.from({ length: 6 }, () => ({ bytes: big, totalMs: 20 + transfer, inFlight: 8 })),
    ];
    const fit = fitCost(obs, REMOTE_COST);
    expect(fit.clientBytesPerMs).toBeCloseTo(100_000, -2);
    // Without a limit (8 connections at 90 MB/s each), nothing is learned.
    const free: ReadObservation[] = [
      ...quiet(10, 20.05),
      ...Array.from({ length: 6 }, () => ({ bytes: big, totalMs: 20 + big / 90_000, inFlight: 8 })),
    ];
    expect(fitCost(free, REMOTE_COST).clientBytesPerMs).toBeUndefined();
  });
});

describe("CostLearner", () => {
  it("keeps a bounded window, follows a change of medium and refits only after new observations", () => {
    const l = new CostLearner({ window: 64 });
    for (let i = 0; i < 10_000; i++) l.record({ bytes: 100, totalMs: 300, inFlight: 1 });
    expect(l.samples).toBe(10_000);
    const first = l.fitted(REMOTE_COST);
    expect(first.firstByteMs).toBeCloseTo(300, 1);
    expect(l.fitted(REMOTE_COST)).toBe(first);
    // The medium gets faster: within one window the old observations are gone.
    for (let i = 0; i < 64; i++) l.record({ bytes: 100, totalMs: 10, inFlight: 1 });
    expect(l.fitted(REMOTE_COST).firstByteMs).toBeCloseTo(10, 1);
    l.reset();
    expect(l.samples).toBe(0);
    expect(l.fitted(REMOTE_COST)).toEqual({});
  });

  it("counts, for each read, the most reads and bytes in flight at any moment of its life", () => {
    const seen: ReadObservation[] = [];
    const l = new CostLearner({ minSamples: 1 });
    const record = l.record.bind(l);
    l.record = (o) => {
      seen.push(o);
      record(o);
    };
    // The first read of a wave starts alone and ends alone, yet three others ran beside it.
    const first = l.begin(100);
    const others = [l.begin(10), l.begin(20), l.begin(30)];
    others.forEach((o, i) => o.end([10, 20, 30][i]));
    const late = l.begin(5);
    first.end(100);
    late.end(5);
    expect(seen.map((o) => [o.bytes, o.inFlight, o.bytesInFlight])).toEqual([
      [10, 4, 160],
      [20, 4, 160],
      [30, 4, 160],
      [100, 4, 160],
      [5, 2, 105],
    ]);
  });

  it("a source read that throws at once is not left in flight", async () => {
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      await w.add("big", new Uint8Array(300_000).fill(1));
      await w.add("other", new Uint8Array(200_000).fill(2));
    });
    const inner = new MemorySource(sink.bytes());
    let fail = true;
    const src: RangeSource = {
      key: "throws-once",
      size: inner.size,
      hints: REMOTE_HINTS, // planned and learned as a remote store is
      read(offset, length, signal) {
        if (fail) {
          fail = false;
          throw new DesIoError("refused at once");
        }
        return inner.read(offset, length, signal);
      },
      readTail: (length, signal) => inner.readTail(length, signal),
    };
    const learner = new CostLearner({ minSamples: 1 });
    const seen: ReadObservation[] = [];
    const record = learner.record.bind(learner);
    learner.record = (o) => {
      seen.push(o);
      record(o);
    };
    const reader = await DesReader.open(src, { learnCost: learner });
    try {
      await expect(reader.get("big")).rejects.toMatchObject({ code: "DES_IO" });
      expect((await reader.get("big")).length).toBe(300_000);
      expect((await reader.get("other")).length).toBe(200_000);
      // Each later read was alone: the one that threw is not counted beside them.
      expect(seen.slice(-2).map((o) => o.inFlight)).toEqual([1, 1]);
    } finally {
      await reader.close();
    }
  });

  it("counts reads in flight and records only completed ones", () => {
    const l = new CostLearner({ minSamples: 1 });
    const a = l.begin();
    const b = l.begin();
    const c = l.begin();
    b.end();
    a.end(10);
    a.end(10);
    c.end(20);
    expect(l.samples).toBe(2);
  });
});

/**
 * A real HTTP server with Range support that waits `delayMs` before every
 * answer; `serial`: it answers one request at a time (as moto does), so a
 * request also waits for every one before it.
 */
async function slowServer(content: Uint8Array, delayMs: number, serial: boolean) {
  let requests = 0;
  let queue = Promise.resolve();
  const server = http.createServer((req, res) => {
    requests++;
    const answer = (): void => {
      const size = content.length;
      const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
      let start = 0;
      let end = size - 1;
      if (m && m[1] === "") start = Math.max(0, size - Number(m[2]));
      else if (m) {
        start = Number(m[1]);
        end = m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2]));
      }
      res.writeHead(m ? 206 : 200, {
        etag: '"v1"',
        "content-length": end - start + 1,
        ...(m ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
      });
      res.end(Buffer.from(content.buffer, content.byteOffset + start, end - start + 1));
    };
    const wait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, delayMs));
    if (serial) queue = queue.then(wait).then(answer);
    else void wait().then(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/a.des`,
    get requests() {
      return requests;
    },
    reset() {
      requests = 0;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const N = 3000;
const nameOf = (i: number): string => `e${String(i).padStart(5, "0")}`;

describe("learning against a real slow server", () => {
  let archive: Uint8Array;
  beforeAll(async () => {
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      for (let i = 0; i < N; i++) await w.add(nameOf(i), bodyOf(i, 600 + (i % 5) * 100));
    });
    archive = sink.bytes();
  });

  /** Data GETs of `names` (index pages loaded first), and the plan the model in force predicts for them. */
  async function batch(reader: DesReader, server: { requests: number; reset(): void }, names: string[]) {
    for (const n of names) expect(await reader.has(n)).toBe(true);
    const stats = await Promise.all(names.map((n) => reader.stat(n)));
    const model = reader.costModel()!;
    const planned = planReads(
      stats.map((s, i) => ({ offset: s.offset, length: s.storedSize, item: i })),
      model,
    ).requests;
    server.reset();
    const got = await reader.getMany(names);
    expect(got.size).toBe(names.length);
    return { requests: server.requests, planned, model };
  }

  // Every 40th entry: gaps of ~32 KiB between the wanted ones.
  const names = Array.from({ length: 60 }, (_, k) => nameOf(17 + k * 40));
  const warm = Array.from({ length: 40 }, (_, k) => nameOf(2500 + k * 11));

  it("after warm-up reads, merges the gaps that a 150 ms first byte justifies, and not before", async () => {
    const server = await slowServer(archive, 150, false);
    const readers: DesReader[] = [];
    try {
      const fixed = await DesReader.open(new HttpSource(server.url), { learnCost: false });
      readers.push(fixed);
      const learning = await DesReader.open(new HttpSource(server.url));
      readers.push(learning);
      const pinned = await DesReader.open(new HttpSource(server.url), { cost: { firstByteMs: 25 } });
      readers.push(pinned);
      // Warm-up: single reads one after another (an index page and an entry each).
      for (const r of [learning, pinned])
        for (const n of warm.slice(0, 20)) expect((await r.get(n)).length).toBeGreaterThan(0);

      const before = await batch(fixed, server, names);
      const after = await batch(learning, server, names);
      const kept = await batch(pinned, server, names);
      // The learned latency is the server's (no faster than its delay), the defaults' is 25 ms.
      expect(after.model.firstByteMs).toBeGreaterThanOrEqual(150);
      expect(before.model.firstByteMs).toBe(REMOTE_COST.firstByteMs);
      expect(kept.model.firstByteMs).toBe(25);
      // Each reader did what its model planned; the learned one merged more.
      expect(before.requests).toBe(before.planned);
      expect(after.requests).toBe(after.planned);
      expect(kept.requests).toBe(kept.planned);
      expect(after.requests).toBeLessThan(before.requests);
      expect(kept.requests).toBe(before.requests);
      // A call's own cost pins the field for that call.
      expect(learning.costModel({ cost: { firstByteMs: 25 } })!.firstByteMs).toBe(25);
    } finally {
      for (const r of readers) await r.close();
      await server.close();
    }
  }, 60_000);

  it("a server that answers one request at a time: learns its per-request cost and plans fewer GETs", async () => {
    const server = await slowServer(archive, 8, true);
    const shared = new CostLearner();
    const readers: DesReader[] = [];
    try {
      const fixed = await DesReader.open(new HttpSource(server.url), { learnCost: false });
      readers.push(fixed);
      const first = await DesReader.open(new HttpSource(server.url), { learnCost: shared });
      readers.push(first);
      // Warm-up: 40 entries one GET each, 16 in flight (the fixed rule is observed too).
      await first.getMany(warm, { maxGap: 0, maxSpan: 1, concurrency: 16 });
      const before = await batch(fixed, server, names);
      // A second reader sharing the learner plans with what the first one saw.
      const second = await DesReader.open(new HttpSource(server.url), { learnCost: shared });
      readers.push(second);
      const after = await batch(second, server, names);
      expect(after.model.requestCpuMs!).toBeGreaterThan(4);
      expect(before.model.requestCpuMs).toBe(REMOTE_COST.requestCpuMs);
      expect(after.requests).toBe(after.planned);
      expect(before.requests).toBe(before.planned);
      expect(after.requests * 4).toBeLessThanOrEqual(before.requests);
    } finally {
      for (const r of readers) await r.close();
      await server.close();
    }
  }, 60_000);

  it("a cold reader's big batch reads a first wave of 16 as planned, then plans the rest with what it showed", async () => {
    // 700 entries of 20 KB: the index comes with the tail, so the batch is the reader's first real reads.
    const sink = new MemorySink();
    await DesWriter.write(sink, {}, async (w) => {
      for (let i = 0; i < 700; i++) await w.add(nameOf(i), bodyOf(i, 20_000));
    });
    const server = await slowServer(sink.bytes(), 8, true);
    try {
      const reader = await DesReader.open(new HttpSource(server.url));
      const some = Array.from({ length: 70 }, (_, k) => nameOf(k * 10));
      const stats = await Promise.all(some.map((n) => reader.stat(n)));
      const initial = planReads(
        stats.map((st, i) => ({ offset: st.offset, length: st.storedSize, item: i })),
        reader.costModel()!,
      );
      // Under the shipped model the ~200 KB gaps are mostly not worth merging: a batch of 64 reads or more.
      expect(initial.requests).toBeGreaterThanOrEqual(64);
      server.reset();
      const got = await reader.getMany(some);
      expect(got.size).toBe(70);
      // 16 reads as planned; the rest merged once the server's per-request cost showed.
      expect(server.requests).toBeGreaterThan(16);
      expect(server.requests).toBeLessThanOrEqual(16 + 10);
      expect(reader.costModel()!.requestCpuMs!).toBeGreaterThan(4);
      await reader.close();
    } finally {
      await server.close();
    }
  }, 60_000);

  it("rejects a learnCost that is neither a boolean nor a CostLearner", async () => {
    const server = await slowServer(archive, 0, false);
    try {
      await expect(
        DesReader.open(new HttpSource(server.url), { learnCost: "yes" as unknown as boolean }),
      ).rejects.toBeInstanceOf(DesInvalidArgumentError);
    } finally {
      await server.close();
    }
  });
});
