import { describe, expect, it } from "vitest";
import { DesChangedError, DesFormatError, DesIoError } from "../src/errors.js";
import { collectBody, planRangeBody } from "../src/io/range-response.js";
import { TransientError, backoffDelay, retryPolicy, withRetries } from "../src/io/retry.js";
import { Attempt, DEFAULT_TIMEOUTS } from "../src/io/timeout.js";

async function* chunks(...parts: number[][]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Uint8Array.from(p);
}

function attempt(): Attempt {
  return new Attempt(undefined, DEFAULT_TIMEOUTS, "test");
}

describe("io/retry: the one retry loop", () => {
  it("retries transient failures with backoff, then gives up with the caller's error", async () => {
    let calls = 0;
    let retried = 0;
    const p = withRetries(
      retryPolicy(2, 1, 2, 3),
      undefined,
      async () => {
        calls++;
        throw new TransientError("flaky");
      },
      (e, n) => new DesIoError(`${e.message} x${n}`),
      () => retried++,
    );
    await expect(p).rejects.toThrow(/flaky x3/);
    expect(calls).toBe(3);
    expect(retried).toBe(2);
  });

  it("does not retry other errors, and returns the first success", async () => {
    let calls = 0;
    await expect(
      withRetries(
        retryPolicy(5, 1, 1, 0),
        undefined,
        async () => {
          calls++;
          throw new DesChangedError("x");
        },
        () => new DesIoError("no"),
      ),
    ).rejects.toBeInstanceOf(DesChangedError);
    expect(calls).toBe(1);
    let n = 0;
    expect(
      await withRetries(
        retryPolicy(5, 1, 1, 0),
        undefined,
        async () => {
          if (n++ < 2) throw new TransientError("t");
          return 42;
        },
        () => new DesIoError("no"),
      ),
    ).toBe(42);
    expect(n).toBe(3);
  });

  it("backoff doubles and is capped, with jitter in [ceiling/2, ceiling]", () => {
    for (let i = 0; i < 50; i++) {
      const d1 = backoffDelay(1, 100, 2000);
      const d4 = backoffDelay(4, 100, 2000);
      const d9 = backoffDelay(9, 100, 2000);
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(100);
      expect(d4).toBeGreaterThanOrEqual(400);
      expect(d4).toBeLessThanOrEqual(800);
      expect(d9).toBeLessThanOrEqual(2000);
    }
    expect(() => retryPolicy(-1, 1, 1, 0)).toThrow(/retries/);
    expect(() => retryPolicy(Number.NaN, 1, 1, 0)).toThrow(/retries/);
  });
});

describe("io/range-response: the one range-answer check", () => {
  it("accepts a matching 206 and refuses a wrong Content-Range, size or version", () => {
    expect(
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 206, contentRange: "bytes 10-14/100", contentLength: 5, version: '"a"' },
        { size: 100, version: '"a"' },
        "k",
      ),
    ).toEqual({ kind: "exact", length: 5, total: 100 });
    expect(() =>
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 206, contentRange: "bytes 10-15/100", contentLength: 6, version: undefined },
        { size: 100 },
        "k",
      ),
    ).toThrow(DesIoError);
    expect(() =>
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 206, contentRange: "bytes 10-14/101", contentLength: 5, version: undefined },
        { size: 100 },
        "k",
      ),
    ).toThrow(DesChangedError);
    expect(() =>
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 206, contentRange: "bytes 10-14/100", contentLength: 5, version: '"b"' },
        { version: '"a"' },
        "k",
      ),
    ).toThrow(DesChangedError);
    expect(() =>
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 416, contentRange: undefined, contentLength: undefined, version: undefined },
        {},
        "k",
      ),
    ).toThrow(DesChangedError);
  });

  it("checks a suffix answer ends at the last byte and has the asked length", () => {
    expect(
      planRangeBody(
        { tail: 10 },
        { status: 206, contentRange: "bytes 90-99/100", contentLength: 10, version: undefined },
        {},
        "k",
      ),
    ).toEqual({ kind: "exact", length: 10, total: 100 });
    expect(
      planRangeBody(
        { tail: 10 },
        { status: 206, contentRange: "bytes 0-3/4", contentLength: 4, version: undefined },
        {},
        "k",
      ),
    ).toEqual({ kind: "exact", length: 4, total: 4 });
    expect(() =>
      planRangeBody(
        { tail: 10 },
        { status: 206, contentRange: "bytes 80-89/100", contentLength: 10, version: undefined },
        {},
        "k",
      ),
    ).toThrow(DesIoError);
    expect(
      planRangeBody(
        { tail: 10 },
        { status: 416, contentRange: "bytes */0", contentLength: undefined, version: undefined },
        {},
        "k",
      ),
    ).toEqual({ kind: "empty" });
    expect(() =>
      planRangeBody(
        { tail: 10 },
        { status: 416, contentRange: "bytes */50", contentLength: undefined, version: undefined },
        {},
        "k",
      ),
    ).toThrow(DesIoError);
  });

  it("a 200 (Range ignored) becomes a window of the body, or an error when ranges are required", () => {
    expect(
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 200, contentRange: undefined, contentLength: 100, version: undefined },
        { size: 100 },
        "k",
      ),
    ).toEqual({ kind: "window", from: 10, to: 15, keep: 5, total: 100 });
    expect(() =>
      planRangeBody(
        { offset: 10, length: 5 },
        { status: 200, contentRange: undefined, contentLength: 99, version: undefined },
        { size: 100 },
        "k",
      ),
    ).toThrow(DesChangedError);
    expect(() =>
      planRangeBody(
        { offset: 98, length: 5 },
        { status: 200, contentRange: undefined, contentLength: 100, version: undefined },
        {},
        "k",
      ),
    ).toThrow(DesFormatError);
    expect(() =>
      planRangeBody(
        { offset: 1, length: 1 },
        { status: 200, contentRange: undefined, contentLength: 100, version: undefined },
        { requireRanges: true },
        "k",
      ),
    ).toThrow(/ignores Range/);
    expect(
      planRangeBody(
        { tail: 10 },
        { status: 200, contentRange: undefined, contentLength: 100, version: undefined },
        {},
        "k",
      ),
    ).toEqual({ kind: "window", from: 90, to: 100, keep: 10, total: 100 });
  });

  it("collectBody takes exactly the window and stops reading after it", async () => {
    let pulled = 0;
    async function* counted(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield Uint8Array.from({ length: 10 }, (_, j) => (i * 10 + j) & 0xff);
      }
    }
    const got = await collectBody(
      counted(),
      { kind: "window", from: 25, to: 47, keep: 22, total: 1000 },
      attempt(),
      "k",
    );
    expect([...got.bytes]).toEqual(Array.from({ length: 22 }, (_, j) => 25 + j));
    expect(pulled).toBe(5); // chunks 0..4 hold bytes 0..49: nothing after the window was read
    expect(got.received).toBe(50);
    // A suffix of a body of unknown length keeps only the last bytes.
    const tail = await collectBody(
      chunks([1, 2, 3], [4, 5], [6, 7, 8, 9]),
      { kind: "window", from: 0, to: undefined, keep: 5, total: undefined },
      attempt(),
      "k",
    );
    expect([...tail.bytes]).toEqual([5, 6, 7, 8, 9]);
    expect(tail.total).toBe(9);
  });

  it("collectBody: a short body is transient, a long one is an error", async () => {
    await expect(
      collectBody(chunks([1, 2]), { kind: "exact", length: 3, total: 3 }, attempt(), "k"),
    ).rejects.toBeInstanceOf(TransientError);
    await expect(
      collectBody(chunks([1, 2], [3, 4]), { kind: "exact", length: 3, total: 3 }, attempt(), "k"),
    ).rejects.toBeInstanceOf(DesIoError);
    async function* broken(): AsyncIterable<Uint8Array> {
      yield Uint8Array.of(1);
      throw new Error("ECONNRESET");
    }
    await expect(collectBody(broken(), { kind: "exact", length: 3, total: 3 }, attempt(), "k")).rejects.toBeInstanceOf(
      TransientError,
    );
  });
});
