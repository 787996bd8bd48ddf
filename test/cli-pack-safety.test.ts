import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readBatchesAhead } from "../src/write/read-ahead.js";
import { tempDir } from "./helpers/tmp.js";

/** Reads `names` under `root` as packDirectory's readers do; the error, if any. */
async function readAll(
  root: string,
  names: string[],
  stats: boolean,
): Promise<{ error: string | undefined; lengths: number[] }> {
  let given = false;
  const lengths: number[] = [];
  try {
    for await (const b of readBatchesAhead(root, async () => (given ? [] : ((given = true), names)), {
      wholeLimit: 1 << 20,
      stats,
    })) {
      lengths.push(...b.lengths);
      b.release();
    }
    return { error: undefined, lengths };
  } catch (e) {
    return { error: (e as Error).message, lengths };
  }
}

describe("pack reads only the regular files the walk saw", () => {
  const dir = tempDir();

  it("a file replaced by a symbolic link after the walk is refused, not followed (O_NOFOLLOW)", async () => {
    fs.writeFileSync(path.join(dir, "secret"), "do not pack me");
    fs.writeFileSync(path.join(dir, "ok"), "ok");
    // The walk saw a regular file called "victim"; by the time it is read it is a link.
    fs.symlinkSync(path.join(dir, "secret"), path.join(dir, "victim"));
    for (const stats of [false, true]) {
      const r = await readAll(dir, ["ok", "victim"], stats);
      expect(r.error).toMatch(/cannot read .*victim/);
      expect(r.lengths).toEqual([2]);
    }
  });

  it("a FIFO in a file's place is refused without blocking", async () => {
    const fifo = path.join(dir, "fifo");
    if (spawnSync("mkfifo", [fifo]).status !== 0) return;
    const r = await readAll(dir, ["ok", "fifo"], true);
    expect(r.error).toMatch(/not a regular file/);
  });
});
