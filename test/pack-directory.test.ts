import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesInvalidArgumentError, DesReader, packDirectory } from "../src/index.js";
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

describe("packDirectory leaves its own archive out, by identity", () => {
  const tree = (root: string, files: number): void => {
    for (let i = 0; i < files; i++) {
      fs.mkdirSync(path.join(root, `d${i % 3}`), { recursive: true });
      fs.writeFileSync(path.join(root, `d${i % 3}`, `f${i}`), `body ${i}`);
    }
  };

  it("the file it replaces, a hard link to it and its temporary file, with and without metadata", async () => {
    for (const metadata of [false, true]) {
      const root = path.join(tempDir("pack-self-"), "t");
      tree(root, 40);
      const archive = path.join(root, "d1", "self.des");
      await packDirectory(root, archive);
      // A big old archive (streamed, not read whole) under its own name and a hard link elsewhere in the tree.
      fs.writeFileSync(archive, Buffer.alloc(3 << 20, 7));
      fs.linkSync(archive, path.join(root, "d2", "alias.bin"));
      const stats = await packDirectory(root, archive, { overwrite: true, metadata });
      const r = await DesReader.open(archive);
      const names = await r.list();
      await r.close();
      const files = names.filter((n) => !n.endsWith("/"));
      expect(files).toHaveLength(40);
      expect(names.some((n) => n.includes("self.des") || n.includes("alias.bin"))).toBe(false);
      expect(stats.entries).toBe(names.length);
      expect(fs.readdirSync(path.join(root, "d1")).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    }
  });

  it("excludeFiles: any file by device and inode, every other file packed as before", async () => {
    const root = path.join(tempDir("pack-exclude-"), "t");
    tree(root, 30);
    const st = fs.statSync(path.join(root, "d0", "f3"));
    const out = path.join(tempDir("pack-exclude-out-"), "x.des");
    await packDirectory(root, out, { excludeFiles: [{ dev: st.dev, ino: st.ino }] });
    const r = await DesReader.open(out);
    const names = await r.list();
    expect(names).toHaveLength(29);
    expect(names).not.toContain("d0/f3");
    expect(Buffer.from(await r.get("d0/f6")).toString()).toBe("body 6");
    await r.close();
  });

  it("leaves out temporary files an interrupted run left beside a path target; checks options before making anything", async () => {
    const root = path.join(tempDir("pack-stale-"), "t");
    tree(root, 10);
    fs.writeFileSync(path.join(root, ".x.des.123-abcdef.tmp"), "half an archive");
    fs.writeFileSync(path.join(root, "d0", ".x.des.123-abcdef.tmp"), "not beside the target: packed");
    const archive = path.join(root, "x.des");
    await packDirectory(root, archive);
    const r = await DesReader.open(archive);
    const names = await r.list();
    await r.close();
    expect(names).toContain("d0/.x.des.123-abcdef.tmp");
    expect(names).not.toContain(".x.des.123-abcdef.tmp");
    expect(names).toHaveLength(11);
    // A bad option is refused as such (not as "exists"), and no temporary file is made for it.
    const before = fs.readdirSync(root).sort();
    await expect(packDirectory(root, archive, { format: 3 as 2 })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await expect(packDirectory(root, archive, { excludeFiles: [{ dev: 1 } as never] })).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    expect(fs.readdirSync(root).sort()).toEqual(before);
  });
});
