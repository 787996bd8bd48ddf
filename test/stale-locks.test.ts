import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DailyShardedDesStore, DesLockedError, DesReader, DesWriter } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

const T = Date.UTC(2025, 0, 15, 8, 0, 0);
const MINUTE_AGO = (Date.now() - 60_000) / 1000;

/** What a lock file says once this process holds it. */
function expectOurs(file: string): void {
  const h = JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; host: string; since: string };
  expect(h.pid).toBe(process.pid);
  expect(h.host).toBe(os.hostname());
  expect(Date.parse(h.since)).toBeGreaterThanOrEqual(Math.floor(performance.timeOrigin));
}

/** A lock of a process that had this process's pid, before this process started. */
const earlierSelf = JSON.stringify({ pid: process.pid, host: os.hostname(), since: "2020-01-01T00:00:00.000Z" });

describe("stale lock files are taken over", () => {
  it("the store's node lock: an old empty or unparsable lock, and an earlier process with our pid", async () => {
    const dir = tempDir();
    const lock = path.join(dir, "_spool", "n03.lock");
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    for (const [label, body] of [
      ["empty", ""],
      ["unparsable", '{"pid": 12'],
      ["earlier process with this pid", earlierSelf],
    ] as const) {
      fs.writeFileSync(lock, body);
      fs.utimesSync(lock, MINUTE_AGO, MINUTE_AGO);
      const s = await DailyShardedDesStore.open({ location: dir, nodeId: 3, clock: () => T });
      expectOurs(lock);
      const n = await s.put(new Uint8Array([label.length]));
      expect([...(await s.get(n))]).toEqual([label.length]);
      await s.close();
      expect(fs.existsSync(lock)).toBe(false);
    }
  });

  it("a live holder keeps its lock: an empty lock just made, our pid since after our start, a second open here", async () => {
    const dir = tempDir();
    const lock = path.join(dir, "_spool", "n04.lock");
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    const recent = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
    for (const body of ["", recent]) {
      fs.writeFileSync(lock, body);
      const e = await DailyShardedDesStore.open({ location: dir, nodeId: 4 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(DesLockedError);
      expect(fs.readFileSync(lock, "utf8")).toBe(body);
    }
    fs.rmSync(lock);
    const a = await DailyShardedDesStore.open({ location: dir, nodeId: 4 });
    // our own lock, even with its time set back: a second open in this process is refused
    fs.utimesSync(lock, MINUTE_AGO, MINUTE_AGO);
    const e = await DailyShardedDesStore.open({ location: dir, nodeId: 4 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DesLockedError);
    expect((e as DesLockedError).holder?.pid).toBe(process.pid);
    await a.close();
  });

  it("the append lock: an old empty or unparsable lock, and an earlier process with our pid", async () => {
    const dir = tempDir();
    const file = path.join(dir, "a.des");
    await DesWriter.write(file, {}, async (w) => {
      await w.add("a", new Uint8Array([1]));
    });
    const lock = `${file}.des-lock`;
    let generation = 1;
    for (const body of ["", "not json", earlierSelf]) {
      fs.writeFileSync(lock, body);
      fs.utimesSync(lock, MINUTE_AGO, MINUTE_AGO);
      const w = await DesWriter.append(file);
      expectOurs(lock);
      await w.add(`g${generation}`, new Uint8Array([generation]));
      expect((await w.close()).generation).toBe(++generation);
      expect(fs.existsSync(lock)).toBe(false);
    }
    const r = await DesReader.open(file);
    expect((await r.list()).sort()).toEqual(["a", "g1", "g2", "g3"]);
    await r.close();
    // a fresh empty lock may be a live appender between creating and writing it
    fs.writeFileSync(lock, "");
    await expect(DesWriter.append(file)).rejects.toBeInstanceOf(DesLockedError);
    expect(fs.statSync(lock).size).toBe(0);
    fs.rmSync(lock);
  });
});

describe("one taker at a time breaks a stale lock", () => {
  it("leaves a stale lock alone while another taker breaks it, and clears a break file a crash left", async () => {
    const dir = tempDir();
    const file = path.join(dir, "a.des");
    await DesWriter.write(file, {}, async (w) => w.add("a", new Uint8Array([1])));
    const lock = `${file}.des-lock`;
    const brk = `${lock}.break`;
    fs.writeFileSync(lock, earlierSelf);
    // Another taker is breaking it right now: this one reports the lock and removes nothing.
    fs.writeFileSync(brk, "");
    await expect(DesWriter.append(file)).rejects.toBeInstanceOf(DesLockedError);
    expect(fs.readFileSync(lock, "utf8")).toBe(earlierSelf);
    expect(fs.existsSync(brk)).toBe(true);
    // A break file that old was left by a taker that died in between: cleared, and the lock taken over.
    fs.utimesSync(brk, MINUTE_AGO, MINUTE_AGO);
    const w = await DesWriter.append(file);
    expectOurs(lock);
    await w.abort();
    expect(fs.existsSync(lock)).toBe(false);
    expect(fs.existsSync(brk)).toBe(false);
  });
});

describe("a lock held by one thread of a process", () => {
  it("is not taken over by another thread of it (same pid, started later)", async () => {
    const { Worker } = await import("node:worker_threads");
    const dir = tempDir();
    const file = path.join(dir, "a.des");
    await DesWriter.write(file, {}, async (w) => w.add("x", new Uint8Array([1])));
    const holder = await DesWriter.append(file);
    try {
      const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
      const src = JSON.stringify(new URL("../src/index.ts", import.meta.url).href);
      const code = `
        const { parentPort, workerData } = require("node:worker_threads");
        import(${tsx})
          .then((t) => { t.register(); return import(${src}); })
          .then((m) => m.DesWriter.append(workerData))
          .then((w) => w.abort().then(() => "taken"), (e) => e.code ?? String(e))
          .then((r) => parentPort.postMessage(r));`;
      const got = await new Promise<unknown>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: file });
        w.once("message", resolve);
        w.once("error", reject);
      });
      expect(got).toBe("DES_LOCKED");
      expect(fs.existsSync(`${file}.des-lock`)).toBe(true);
    } finally {
      await holder.abort();
    }
    expect(fs.existsSync(`${file}.des-lock`)).toBe(false);
  });
});
