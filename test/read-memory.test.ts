import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers/tmp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "read-memory-child.mts");

/**
 * Runs one scenario of read-memory-child.mts in a fresh process; its JSON line.
 * The young generation is fixed at 16 MiB: newer V8s grow it up to 64 MiB, and
 * a peak sampled from `heapUsed` counts garbage not yet collected there.
 */
function run(...args: (string | number)[]): Promise<Record<string, number | string>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--expose-gc", "--max-semi-space-size=16", "--import", "tsx", child, ...args.map(String)],
      { cwd: path.join(here, ".."), maxBuffer: 1 << 20, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, number | string>);
      },
    );
  });
}

describe("reader memory bounds, measured in child processes (issue 7.14, 7.17, 7.19)", () => {
  const dir = tempDir("des-mem-");

  it("a single 128 MiB gzip entry peaks at about 1x its size, not 2x", async () => {
    const file = path.join(dir, "one.des");
    await run("make-zeros", file, 1, 128);
    const m = await run("get-one", file, 256);
    expect(m["size"]).toBe(128 * 2 ** 20);
    expect(m["ratio"]).toBeLessThan(1.4);
  });

  it("iterMany of 6 x 32 MiB bomb-like entries stays within a few maxBatchBytes; getMany refuses the batch", async () => {
    const file = path.join(dir, "six.des");
    await run("make-zeros", file, 6, 32);
    const m = await run("iter-many", file, 6, 32);
    expect(m["total"]).toBe(6 * 32 * 2 ** 20);
    expect(m["getMany"]).toBe("DES_INVALID_ARGUMENT"); // 192 MiB in one batch, maxBatchBytes 32 MiB
    // Below all six at once (192 MiB; 384 MiB at the old 2x): freed entries wait for the GC, so a few budgets.
    expect(m["peakAboveMiB"]).toBeLessThan(6 * 32);
  });

  it("100,000 concurrent gets hold under 3 KB each while pending", async () => {
    const m = await run("gets", 100_000);
    expect(m["bodies"]).toBe(16_000_000);
    expect(m["bytesPerGet"]).toBeLessThan(3000);
  });

  it("list() of 200,000 entries peaks under 200 bytes an entry and holds under 60; entries() walks them all", async () => {
    const m = await run("list", 200_000);
    expect(m["entries"]).toBe(200_000);
    expect(m["walked"]).toBe(200_000);
    expect(m["listPeakBytesPerEntry"]).toBeLessThan(200);
    expect(m["heldBytesPerEntry"]).toBeLessThan(60);
  });
});
