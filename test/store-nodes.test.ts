import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DailyShardedDesStore, DesLockedError, DesReader, parseName } from "../src/index.js";
import { blobFor, sameBytes } from "./helpers/store-data.js";
import { tempDir } from "./helpers/tmp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, "helpers", "store-child.ts");

function runChild(args: string[]): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`child exited with ${code}`));
      const m = new Map<string, number>();
      for (const line of out.split("\n")) {
        const [name, k] = line.split(" ");
        if (name && k !== undefined) m.set(name, Number(k));
      }
      resolve(m);
    });
  });
}

describe("several nodes on one folder", () => {
  it("two processes with different node ids never write the same file or mint the same name, and a third reads all", async () => {
    const dir = tempDir();
    const [a, b] = await Promise.all([
      runChild([dir, "1", "1500", "8", "500", "close"]),
      runChild([dir, "2", "1500", "8", "500", "close"]),
    ]);
    expect(a.size).toBe(1500);
    expect(b.size).toBe(1500);
    for (const n of a.keys()) expect(b.has(n)).toBe(false);
    // every file holds names of one node only, and says so in its key
    const days = new Set([...a.keys(), ...b.keys()].map((n) => parseName(n).day));
    let files = 0;
    for (const day of days) {
      for (const f of fs.readdirSync(path.join(dir, day))) {
        const m = /^[0-9a-f]\.n(0[12])-[0-9A-F]{12}-[0-9A-F]{12}\.des$/.exec(f);
        expect(m).not.toBeNull();
        const r = await DesReader.open(path.join(dir, day, f));
        for (const n of await r.list()) expect(parseName(n).nodeId).toBe(Number(m![1]));
        await r.close();
        files++;
      }
    }
    expect(files).toBeGreaterThanOrEqual(2 * 16);
    const reader = await DailyShardedDesStore.open({ location: dir, nodeId: 9, shardBits: 4 });
    const all = new Map([...a, ...b]);
    const got = await reader.getMany(all.keys());
    for (const [n, k] of all) expect(sameBytes(got.get(n), blobFor(k))).toBe(true);
    for (const [n, k] of [...all].slice(0, 200)) expect(sameBytes(await reader.get(n), blobFor(k))).toBe(true);
    const listed = new Set<string>();
    for (const day of days) for (const n of await reader.list(day)) listed.add(n);
    expect(listed).toEqual(new Set(all.keys()));
    await reader.close();
  });

  it("a second process with the same node id on one folder fails with DesLockedError naming the holder", async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, "4", "100000000", "1", "100000"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => d.includes("ready") && resolve());
        child.once("exit", () => reject(new Error("child exited early")));
      });
      const err = await DailyShardedDesStore.open({ location: dir, nodeId: 4 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DesLockedError);
      expect((err as DesLockedError).code).toBe("DES_LOCKED");
      expect((err as DesLockedError).holder?.pid).toBe(child.pid);
      const other = await DailyShardedDesStore.open({ location: dir, nodeId: 5 });
      await other.close();
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
    }
  });
});
