import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DailyShardedDesStore, parseName } from "../src/index.js";
import { blobFor, sameBytes } from "./helpers/store-data.js";
import { rngFor } from "./helpers/store-rng.js";
import { tempDir } from "./helpers/tmp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, "helpers", "store-child.ts");
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGKILL");
});

interface Run {
  child: ChildProcess;
  resolved: Map<string, number>;
  ready: Promise<void>;
  exited: Promise<void>;
  firstPut: Promise<void>;
}

export function startChild(args: string[]): Run {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  const resolved = new Map<string, number>();
  let buf = "";
  let onReady: () => void = () => undefined;
  let onFirst: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const firstPut = new Promise<void>((r) => (onFirst = r));
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === "ready") onReady();
      else if (line !== "done") {
        const [name, k] = line.split(" ");
        resolved.set(name!, Number(k));
        onFirst();
      }
    }
  });
  const exited = new Promise<void>((r) => child.once("exit", () => (children.delete(child), r())));
  return { child, resolved, ready, exited, firstPut };
}

describe("crash safety", () => {
  it("after kill -9 at random moments, a restarted store serves every acknowledged put and only whole records", async () => {
    const dir = tempDir();
    const rnd = rngFor(20251201);
    const acknowledged = new Map<string, number>();
    const CONC = 16;
    for (let round = 0; round < 3; round++) {
      const run = startChild([dir, "3", "1000000", String(CONC), "400"]);
      await run.firstPut;
      await new Promise((r) => setTimeout(r, 50 + Math.floor(rnd() * 400)));
      run.child.kill("SIGKILL");
      await run.exited;
      for (const [n, k] of run.resolved) acknowledged.set(n, k);
      expect(run.resolved.size).toBeGreaterThan(0);

      // Restart with the same node id: the dead process's lock is taken over.
      const store = await DailyShardedDesStore.open({ location: dir, nodeId: 3, shardBits: 4 });
      for (const [n, k] of acknowledged) {
        expect(sameBytes(await store.get(n), blobFor(k))).toBe(true);
      }

      const days = new Set([...acknowledged.keys()].map((n) => parseName(n).day));
      let unacknowledged = 0;
      for (const day of days) {
        for (const n of await store.list(day)) {
          const meta = (await store.getMeta(n)) as { k: number };
          expect(sameBytes(await store.get(n), blobFor(meta.k))).toBe(true);
          if (!acknowledged.has(n)) {
            unacknowledged++;
            acknowledged.set(n, meta.k); // durable now; a later round must keep it
          }
        }
      }
      // Only puts in flight at the kill (at most one per concurrent caller) may have reached the disk unacknowledged.

      expect(unacknowledged).toBeLessThanOrEqual(CONC);
      await store.close({ seal: round % 2 === 0 });
    }
    expect(acknowledged.size).toBeGreaterThan(100);
  });
});
