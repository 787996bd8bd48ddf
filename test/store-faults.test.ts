import { describe, expect, it } from "vitest";
import { DailyShardedDesStore, DesInvalidArgumentError } from "../src/index.js";
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
