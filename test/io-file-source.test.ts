import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { DesChangedError, DesInvalidArgumentError, DesReader, FileSource } from "../src/index.js";
import { fileVersion } from "../src/sources/file.js";
import { buildArchive, utf8, withTimeout } from "./helpers/archives.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("des-io-file-");

function writeFile(name: string, bytes: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

/** Replaces `target` atomically by a rename, as FileSink with overwrite does. */
function replace(target: string, bytes: Uint8Array): void {
  const tmp = `${target}.new`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, target);
}

describe("FileSource version token", () => {
  it("readTail returns device:inode:size:mtimeNs from fstat, and a read pinned to it succeeds", async () => {
    const p = writeFile(
      "v.bin",
      Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff),
    );
    const src = await FileSource.open(p);
    const tail = await src.readTail(100);
    const st = fs.statSync(p, { bigint: true });
    expect(tail.version).toBe(`${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`);
    expect(tail.version).toBe(fileVersion(st));
    expect(tail.size).toBe(1000);
    expect([...(await src.read(10, 3, undefined, tail.version))]).toEqual([10, 11, 12]);
    await src.close();
  });

  it("a file replaced by a rename: pinned reads fail with DesChangedError at the path check, readTail switches to the new file", async () => {
    const p = writeFile("r.bin", new Uint8Array(500).fill(1));
    const src = await FileSource.open(p, { checkIntervalMs: 0 });
    const { version: v1 } = await src.readTail(10);
    replace(p, new Uint8Array(700).fill(2));
    await expect(src.read(0, 4, undefined, v1)).rejects.toBeInstanceOf(DesChangedError);
    await expect(src.readMany([{ offset: 0, length: 4 }], undefined, v1)).rejects.toBeInstanceOf(DesChangedError);
    const t2 = await src.readTail(10);
    expect(t2.version).not.toBe(v1);
    expect(t2.size).toBe(700);
    expect([...t2.bytes]).toEqual(new Array(10).fill(2));
    // The old version is gone for good; the new one reads.
    await expect(src.read(0, 4, undefined, v1)).rejects.toBeInstanceOf(DesChangedError);
    expect([...(await src.read(0, 4, undefined, t2.version))]).toEqual([2, 2, 2, 2]);
    await src.close();
  });

  it("between path checks a pinned read is one string comparison (no stat), and serves the version's own bytes", async () => {
    const p = writeFile("s.bin", new Uint8Array(500).fill(7));
    const src = await FileSource.open(p, { checkIntervalMs: 60_000 });
    const { version } = await src.readTail(10);
    replace(p, new Uint8Array(500).fill(8));
    const statSpy = fs.statSync;
    let stats = 0;
    (fs as { statSync: typeof fs.statSync }).statSync = ((...a: Parameters<typeof fs.statSync>) => {
      stats++;
      return statSpy(...a);
    }) as typeof fs.statSync;
    try {
      for (let i = 0; i < 100; i++) expect((await src.read(i, 1, undefined, version))[0]).toBe(7);
    } finally {
      (fs as { statSync: typeof fs.statSync }).statSync = statSpy;
    }
    expect(stats).toBe(0);
    await src.close();
  });

  it("a file rewritten in place (same inode, new size) is a change too", async () => {
    const p = writeFile("w.bin", new Uint8Array(300).fill(3));
    const src = await FileSource.open(p, { checkIntervalMs: 0 });
    const { version } = await src.readTail(10);
    fs.appendFileSync(p, new Uint8Array(10));
    await expect(src.read(0, 4, undefined, version)).rejects.toBeInstanceOf(DesChangedError);
    await src.close();
  });

  it("DesReader over a FileSource follows a replaced archive like a replaced S3 object (one reopen)", async () => {
    // Bodies larger than the tail read at open, so a get needs a read of the file.
    const pad = new Uint8Array(200_000);
    const a = await buildArchive([
      { name: "x", data: utf8("old old old") },
      { name: "z", data: pad },
    ]);
    const b = await buildArchive([
      { name: "x", data: utf8("new!") },
      { name: "y", data: utf8("y") },
      { name: "z", data: pad },
    ]);
    const p = writeFile("arch.des", a);
    const reader = await DesReader.open(await FileSource.open(p, { checkIntervalMs: 0 }));
    expect(Buffer.from(await reader.get("x")).toString()).toBe("old old old");
    replace(p, b);
    expect(Buffer.from(await reader.get("x")).toString()).toBe("new!");
    expect(reader.entryCount).toBe(3);
    await reader.close();
  });
});

describe("FileSource on special files (issue 7 item 9)", () => {
  it("a FIFO is refused at once with DES_INVALID_ARGUMENT, by FileSource and DesReader.open", async () => {
    const fifo = path.join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    const t0 = Date.now();
    await expect(withTimeout(FileSource.open(fifo), 2000, "FileSource.open(fifo)")).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    await expect(withTimeout(DesReader.open(fifo), 2000, "DesReader.open(fifo)")).rejects.toMatchObject({
      code: "DES_INVALID_ARGUMENT",
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("with syncReads (open and stat on the calling thread) a FIFO, a device and a missing file are refused the same way", async () => {
    const fifo = path.join(dir, "pipe-sync");
    execFileSync("mkfifo", [fifo]);
    await expect(withTimeout(FileSource.open(fifo, { syncReads: true }), 2000, "open(fifo)")).rejects.toBeInstanceOf(
      DesInvalidArgumentError,
    );
    await expect(DesReader.open("/dev/null", { syncReads: true })).rejects.toMatchObject({
      code: "DES_INVALID_ARGUMENT",
      message: expect.stringMatching(/not a regular file/),
    });
    await expect(FileSource.open(path.join(dir, "absent.des"), { syncReads: true })).rejects.toMatchObject({
      code: "DES_IO",
      message: expect.stringMatching(/cannot open .*absent\.des/),
    });
    const p = writeFile("sync-open.des", await buildArchive([{ name: "x", data: utf8("sync") }]));
    const r = await DesReader.open(p, { syncReads: true });
    expect(Buffer.from(await r.get("x")).toString()).toBe("sync");
    await r.close();
  });

  it("a character device and a directory are refused too", async () => {
    await expect(FileSource.open("/dev/null")).rejects.toMatchObject({
      code: "DES_INVALID_ARGUMENT",
      message: expect.stringMatching(/not a regular file/),
    });
    await expect(FileSource.open(dir)).rejects.toMatchObject({
      code: expect.stringMatching(/DES_INVALID_ARGUMENT|DES_IO/),
    });
  });
});

describe("FileSource.close (issue 7 item 12)", () => {
  it("waits for single reads in flight: the read settles with the right bytes before close resolves", async () => {
    const big = new Uint8Array(48 << 20);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
    const p = writeFile("big.bin", big);
    for (let round = 0; round < 3; round++) {
      const src = await FileSource.open(p);
      const order: string[] = [];
      const read = src.read(0, big.length).then((b) => {
        order.push("read");
        return b;
      });
      const closed = src.close().then(() => order.push("close"));
      await Promise.all([read, closed]);
      expect(order).toEqual(["read", "close"]);
      const got = await read;
      expect(got[4096 * 7]).toBe(7);
      expect(got[4096 * 300]).toBe(300 & 0xff);
    }
  });

  it("racing closes never give EBADF or another file's bytes", async () => {
    const pa = writeFile("a.bin", new Uint8Array(1 << 16).fill(0xaa));
    const pb = writeFile("b.bin", new Uint8Array(1 << 16).fill(0xbb));
    let ok = 0;
    let closedErrors = 0;
    for (let round = 0; round < 20; round++) {
      const src = await FileSource.open(pa);
      const reads = Array.from({ length: 50 }, (_, i) =>
        src.read((i * 997) % 60000, 4096).then(
          (b) => {
            expect(b.every((x) => x === 0xaa)).toBe(true);
            ok++;
          },
          (e: Error & { code?: string }) => {
            expect(e.code).toBe("DES_IO");
            expect(e.message).toMatch(/is closed/);
            closedErrors++;
          },
        ),
      );
      const closing = src.close();
      // Descriptors freed now would be reused by these opens.
      const others = await Promise.all(Array.from({ length: 4 }, () => FileSource.open(pb)));
      await Promise.all([...reads, closing]);
      await Promise.all(others.map((o) => o.close()));
    }
    expect(ok + closedErrors).toBe(1000);
    expect(ok).toBe(1000);
  });
});
