import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, packDirectory } from "../src/index.js";
import { tempDir } from "./helpers/tmp.js";

describe("packDirectory", () => {
  it("counts the bytes of batches the read-ahead threads hand over (their buffers go back detached)", async () => {
    const root = tempDir("pack-dir-");
    const tree = path.join(root, "tree");
    const want = new Map<string, Buffer>();
    for (let i = 0; i < 300; i++) {
      const name = `d${i % 7}/f${i}.txt`;
      const body = Buffer.from(`file ${i}\n`.repeat(1 + (i % 5)));
      fs.mkdirSync(path.join(tree, path.dirname(name)), { recursive: true });
      fs.writeFileSync(path.join(tree, name), body);
      want.set(name, body);
    }
    const archive = path.join(root, "tree.des");
    const stats = await packDirectory(tree, archive);
    expect(stats.entries).toBe(300);
    expect(stats.archiveBytes).toBe(fs.statSync(archive).size);
    const r = await DesReader.open(archive);
    const got = await r.getMany([...want.keys()]);
    for (const [name, body] of want) expect(Buffer.from(got.get(name)!).equals(body)).toBe(true);
    expect((await r.verify()).ok).toBe(true);
    await r.close();
  });
});
