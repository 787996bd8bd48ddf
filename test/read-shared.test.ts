import { describe, expect, it } from "vitest";
import { DesAbortedError } from "../src/index.js";
import { SharedRegistry, SharedTask } from "../src/read/shared.js";

describe("SharedTask: shared work and who may cancel it", () => {
  it("work started by a caller without a signal runs without a controller and is never cancelled", async () => {
    const seen: (AbortSignal | undefined)[] = [];
    let finish!: (v: number) => void;
    const t = new SharedTask<number>((sig) => {
      seen.push(sig);
      return new Promise<number>((r) => (finish = r));
    });
    expect(seen).toEqual([undefined]);
    const a = t.join();
    const ac = new AbortController();
    const b = t.join(ac.signal);
    ac.abort();
    await expect(b).rejects.toBeInstanceOf(DesAbortedError);
    expect(t.cancelled).toBe(false);
    finish(7);
    expect(await a).toBe(7);
  });

  it("work started for a caller with a signal is cancelled once every caller with a signal has gone", async () => {
    let workSignal: AbortSignal | undefined;
    const first = new AbortController();
    const t = new SharedTask<number>((sig) => {
      workSignal = sig;
      return new Promise<number>((_, reject) => sig!.addEventListener("abort", () => reject(sig!.reason)));
    }, first.signal);
    expect(workSignal).toBeInstanceOf(AbortSignal);
    const second = new AbortController();
    const a = t.join(first.signal);
    const b = t.join(second.signal);
    first.abort();
    await expect(a).rejects.toBeInstanceOf(DesAbortedError);
    expect(workSignal!.aborted).toBe(false); // the second caller still waits
    second.abort();
    await expect(b).rejects.toBeInstanceOf(DesAbortedError);
    expect(workSignal!.aborted).toBe(true);
    expect(t.cancelled).toBe(true);
    await expect(t.promise).rejects.toBeInstanceOf(DesAbortedError);
  });

  it("the registry hands the first caller's signal to the task it starts", async () => {
    const reg = new SharedRegistry();
    const signals: (AbortSignal | undefined)[] = [];
    const unbounded = reg.start(["a"], (sig) => (signals.push(sig), Promise.resolve(1)));
    const ac = new AbortController();
    const bounded = reg.start(["b"], (sig) => (signals.push(sig), Promise.resolve(2)), ac.signal);
    expect(await unbounded.join()).toBe(1);
    expect(await bounded.join(ac.signal)).toBe(2);
    expect(signals[0]).toBeUndefined();
    expect(signals[1]).toBeInstanceOf(AbortSignal);
  });
});
