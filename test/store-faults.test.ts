import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DailyShardedDesStore,
  DesClosedError,
  DesError,
  DesInvalidArgumentError,
  DesIoError,
  FolderLocation,
  formatName,
  parseName,
  shardFromName,
} from "../src/index.js";
import type { Location, LocationEntry } from "../src/index.js";
import { sameBytes } from "./helpers/store-data.js";
import { tempDir } from "./helpers/tmp.js";

const T = Date.UTC(2025, 0, 15, 8, 0, 0);

/** The value of `p`, or "pending" when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"pending">((r) => (timer = setTimeout(() => r("pending"), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("a put that fails after waiting for room", () => {
  it("gives its room back: later puts are not held up (bad clock, bad day function, bad day)", async () => {
    const dir = tempDir();
    let clockValue = T;
    let badDay = false;
    const s = await DailyShardedDesStore.open({
      location: dir,
      nodeId: 1,
      maxQueuedBytes: 1000,
      clock: () => clockValue,
      day: (ms) => (badDay ? "2025-02-30" : new Date(ms)),
    });
    const body = new Uint8Array(600).fill(5);
    for (const [label, spoil, mend] of [
      ["clock", () => (clockValue = NaN), () => (clockValue = T)],
      ["day function", () => (badDay = true), () => (badDay = false)],
    ] as const) {
      const first = s.put(body); // queued: the next put of 600 bytes waits for room
      const waiting = s.put(body);
      spoil(); // the waiting put mints its name only once woken
      expect(await first, label).toMatch(/^DES_20250115_/);
      await expect(waiting, label).rejects.toBeInstanceOf(DesInvalidArgumentError);
      mend();
      const later = await within(s.put(body), 3000);
      expect(later, label).not.toBe("pending");
      expect(sameBytes(await s.get(later as string), body)).toBe(true);
    }
    // a bad `day` of the put itself is refused before it waits for anything
    const queued = s.put(body);
    await expect(s.put(body, { day: "2025-02-30" })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await expect(s.put(body, { day: new Date(NaN) })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await queued;
    const names = await within(Promise.all([s.put(body), s.put(body), s.put(new Uint8Array(10))]), 3000);
    expect(names).not.toBe("pending");
    expect(new Set(names as string[]).size).toBe(3);
    expect(s.stats.puts).toBe(8);
    expect(s.stats.peakQueuedBytes).toBeLessThanOrEqual(1000 + 700);
    await s.close();
  });
});

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<DesError> {
  const e: unknown = await p.then(
    () => new Error("resolved"),
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DesError);
  return e as DesError;
}

describe("file-system failures leave the store as DesErrors", () => {
  it("a rotation that cannot create its next journal fails the put with DesIoError; the acknowledged puts survive", async () => {
    const dir = tempDir();
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 1, maxEntries: 2, clock: () => T });
    const squatter = path.join(dir, "_spool", "n01", "000000000002.wal");
    fs.writeFileSync(squatter, "squatter");
    const [a, b, c] = await Promise.allSettled([
      s.put(new Uint8Array([1])),
      s.put(new Uint8Array([2])),
      s.put(new Uint8Array([3])),
    ]);
    expect(a.status).toBe("fulfilled");
    expect(b.status).toBe("fulfilled");
    expect(c.status).toBe("rejected");
    const e = (c as PromiseRejectedResult).reason as DesIoError;
    expect(e).toBeInstanceOf(DesIoError);
    expect(e.code).toBe("DES_IO");
    expect(e.message).toContain(`cannot create journal ${squatter}`);
    expect((e.cause as NodeJS.ErrnoException).code).toBe("EEXIST");
    expect((await rejection(s.flush())).code).toBe("DES_IO");
    expect((await rejection(s.close({ seal: false }))).code).toBe("DES_IO");
    fs.rmSync(squatter);
    const again = await DailyShardedDesStore.open({ location: dir, nodeId: 1, clock: () => T });
    const names = [(a as PromiseFulfilledResult<string>).value, (b as PromiseFulfilledResult<string>).value];
    expect([...(await again.get(names[0]!))]).toEqual([1]);
    expect([...(await again.get(names[1]!))]).toEqual([2]);
    await again.close();
  });

  it("open reports a journal it cannot read and a journal folder it cannot create as DesIoError, and frees the lock", async () => {
    const dir = tempDir();
    const jdir = path.join(dir, "_spool", "n03");
    fs.mkdirSync(path.join(jdir, "000000000001.wal"), { recursive: true });
    const e = await rejection(DailyShardedDesStore.open({ location: dir, nodeId: 3 }));
    expect(e).toBeInstanceOf(DesIoError);
    expect(e.message).toContain(`cannot read journal ${path.join(jdir, "000000000001.wal")}`);
    expect((e.cause as NodeJS.ErrnoException).code).toBe("EISDIR");
    fs.rmSync(jdir, { recursive: true });
    fs.writeFileSync(jdir, "x");
    const f = await rejection(DailyShardedDesStore.open({ location: dir, nodeId: 3 }));
    expect(f).toBeInstanceOf(DesIoError);
    expect(f.message).toContain(`cannot create the journal folder ${jdir}`);
    expect((f.cause as NodeJS.ErrnoException).code).toBe("EEXIST");
    fs.rmSync(jdir);
    expect(fs.readdirSync(path.join(dir, "_spool"))).toEqual([]); // no lock left behind
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 3, clock: () => T });
    expect([...(await s.get(await s.put(new Uint8Array([9]))))]).toEqual([9]);
    await s.close();
  });

  it("puts issued while close runs fail with DesClosedError; every put acknowledged before is kept", async () => {
    const dir = tempDir();
    const s = await DailyShardedDesStore.open({ location: dir, nodeId: 2, shardBits: 2 });
    const before = await Promise.all(Array.from({ length: 300 }, (_, i) => s.put(new Uint8Array(200).fill(i & 255))));
    const closing = s.close();
    // each put's outcome: the code it failed with, or "resolved"
    const outcome = (p: Promise<string>): Promise<string> =>
      p.then(
        () => "resolved",
        (e: unknown) => (e instanceof DesError ? e.code : String(e)),
      );
    const during: Promise<string>[] = [];
    let done = false;
    void closing.finally(() => (done = true));
    during.push(outcome(s.put(new Uint8Array(500).fill(7))), outcome(s.put(new Uint8Array(500).fill(8))));
    while (!done) {
      await new Promise((r) => setImmediate(r));
      during.push(outcome(s.put(new Uint8Array(500).fill(9))));
    }
    await closing;
    const codes = await Promise.all(during);
    expect(codes).toEqual(during.map(() => "DES_CLOSED"));
    expect(during.length).toBeGreaterThan(2);
    await expect(s.put(new Uint8Array(1))).rejects.toBeInstanceOf(DesClosedError);
    const again = await DailyShardedDesStore.open({ location: dir, nodeId: 2, shardBits: 2 });
    const got = await again.getMany(before);
    expect(got.size).toBe(300);
    for (const [i, n] of before.entries()) expect(got.get(n)).toEqual(new Uint8Array(200).fill(i & 255));
    await again.close();
  });
});

/** A folder whose listings wait for `gate` once they have read the folder (a listing as slow as an S3 LIST). */
class SlowListing implements Location {
  readonly url: string;
  gate: Promise<void> | undefined;
  listings = 0;
  constructor(private readonly inner: FolderLocation) {
    this.url = inner.url;
  }
  child(key: string): Location {
    return this.inner.child(key);
  }
  source(key: string): ReturnType<Location["source"]> {
    return this.inner.source(key);
  }
  sink(key: string, opts?: { readonly overwrite?: boolean }): ReturnType<Location["sink"]> {
    return this.inner.sink(key, opts);
  }
  externalStore(): ReturnType<Location["externalStore"]> {
    return this.inner.externalStore();
  }
  stat(key: string): ReturnType<Location["stat"]> {
    return this.inner.stat(key);
  }
  async *list(prefix?: string, signal?: AbortSignal): AsyncIterable<LocationEntry> {
    this.listings++;
    const entries: LocationEntry[] = [];
    for await (const e of this.inner.list(prefix, signal)) entries.push(e);
    await this.gate;
    yield* entries;
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
}

describe("read-your-writes", () => {
  it("a name sealed while a listing of its day and shard is in flight is readable at once, not after listTtlMs", async () => {
    const root = tempDir();
    const location = new SlowListing(new FolderLocation(root));
    const s = await DailyShardedDesStore.open({
      location,
      spoolDir: tempDir(),
      nodeId: 1,
      shardBits: 1,
      listTtlMs: 60_000,
      clock: () => T,
    });
    const body = new TextEncoder().encode("acknowledged");
    const n = await s.put(body);
    const p = parseName(n);
    // another node's name of the same day and shard: its miss lists the shard
    let m = "";
    for (let seq = 0; seq < 256; seq++) {
      m = formatName({ prefix: "DES", day: p.day, timestampBits: 12345, nodeId: 9, seq });
      if (shardFromName(m, 1) === shardFromName(n, 1)) break;
    }
    let open!: () => void;
    location.gate = new Promise<void>((r) => (open = r));
    const miss = s.has(m); // its listing reads the folder (no part yet), then waits
    while (location.listings === 0) await new Promise((r) => setImmediate(r));
    await s.flush(); // seals n into a part meanwhile
    open();
    location.gate = undefined;
    expect(await miss).toBe(false);
    expect(sameBytes(await s.get(n), body)).toBe(true);
    expect(await s.has(n)).toBe(true);
    expect((await s.getMany([n])).size).toBe(1);
    expect(await s.list(p.day)).toEqual([n]);
    await s.close();
  });
});
