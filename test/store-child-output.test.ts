import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers/tmp.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, "helpers", "store-child.ts");

describe("the store writer child used by the crash and node tests", () => {
  it("prints every acknowledged put even when its parent stops reading for a while (a full, non-blocking stdout pipe)", async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, "9", "4000", "16", "100000", "close"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (err += d));
    // Read "ready", then stop reading until the pipe has long been full.
    await new Promise<void>((resolve) => {
      child.stdout.once("data", (d: string) => {
        out += d;
        child.stdout.pause();
        resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 1500));
    child.stdout.on("data", (d: string) => (out += d));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(err).not.toContain("EAGAIN");
    expect(code).toBe(0);
    const lines = out.split("\n").filter((l) => l.length > 0);
    expect(lines[0]).toBe("ready");
    expect(lines[lines.length - 1]).toBe("done");
    const puts = lines.slice(1, -1);
    expect(puts.length).toBe(4000);
    expect(new Set(puts.map((l) => l.split(" ")[0])).size).toBe(4000);
  }, 30_000);
});
