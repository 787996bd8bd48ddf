import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeFsMetaV2, fsMetaValue } from "../src/format/fs-meta.js";
import type { FsKind, FsMeta } from "../src/format/fs-meta.js";
import { encodeMetaV2, loadMetaCodec } from "../src/format/meta.js";
import { DesReader } from "../src/read/reader.js";
import { toFileStat } from "../src/read/fs-stat.js";
import { packDirectory } from "../src/write/pack-directory.js";
import { tempDir } from "./helpers/tmp.js";

beforeAll(() => loadMetaCodec());

const KINDS: FsKind[] = ["file", "directory", "symlink", "hardlink"];

function same(m: FsMeta): void {
  expect(Buffer.from(encodeFsMetaV2(m)).toString("hex")).toBe(
    Buffer.from(encodeMetaV2(fsMetaValue(m))).toString("hex"),
  );
}

describe("encodeFsMetaV2", () => {
  it("writes the bytes encodeMetaV2 writes for the same metadata, at every integer width", () => {
    const edges = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0xffff, 0x10000, 0xffffffff, 0x100000000, 2 ** 40, -1, -200];
    for (const kind of KINDS)
      for (const v of edges) {
        same({ kind, mode: 0o644, mtimeSeconds: v, mtimeNanos: 0 });
        same({ kind, mode: 0o755, mtimeSeconds: 1_700_000_000, mtimeNanos: Math.abs(v) % 1e9, uid: Math.abs(v) });
        same({ kind, mode: v & 0o7777, mtimeSeconds: 1, mtimeNanos: 5, uid: 0, gid: Math.abs(v) });
        same({ kind, mode: 0o600, mtimeSeconds: 1, mtimeNanos: 999_999_999, gid: 1000, linkTo: "a/b" });
      }
    fc.assert(
      fc.property(
        fc.constantFrom(...KINDS),
        fc.integer({ min: 0, max: 0o7777 }),
        fc.oneof(fc.integer({ min: -(2 ** 34), max: 2 ** 34 }), fc.integer({ min: 0, max: 300 })),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
        fc.option(fc.integer({ min: 0, max: 2 ** 32 + 5 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 70_000 }), { nil: undefined }),
        fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
        (kind, mode, mtimeSeconds, mtimeNanos, uid, gid, linkTo) => {
          const m: FsMeta = {
            kind,
            mode,
            mtimeSeconds,
            mtimeNanos,
            ...(uid !== undefined ? { uid } : {}),
            ...(gid !== undefined ? { gid } : {}),
            ...(linkTo !== undefined ? { linkTo } : {}),
          };
          same(m);
        },
      ),
      { numRuns: 400, seed: 11 },
    );
  });

  it("packDirectory with metadata stores each file's mode and mtime (v2, encoded from the stat numbers)", async () => {
    const dir = tempDir("fs-meta-pack");
    const root = path.join(dir, "tree");
    fs.mkdirSync(path.join(root, "sub"), { recursive: true });
    const files = ["a.txt", "run.sh", "sub/private", "sub/old"];
    const modes = [0o644, 0o755, 0o600, 0o640];
    const times = [1_700_000_000.123456, 1_600_000_000, 1_650_000_000.5, 100];
    files.forEach((f, i) => {
      const p = path.join(root, f);
      fs.writeFileSync(p, `body ${i}\n`);
      fs.chmodSync(p, modes[i]!);
      fs.utimesSync(p, times[i]!, times[i]!);
    });
    const out = path.join(dir, "t.des");
    await packDirectory(root, out, { metadata: true });
    const r = await DesReader.open(out);
    try {
      for (const f of files) {
        const st = toFileStat(f, 0, await r.getMeta(f));
        const want = fs.lstatSync(path.join(root, f));
        expect(st.kind).toBe("file");
        expect(st.mode).toBe(want.mode & 0o7777);
        expect(st.mtimeMs).toBeCloseTo(want.mtimeMs, 3);
        expect(st.uid).toBe(want.uid);
        expect(Buffer.from(await r.get(f)).toString()).toBe(`body ${files.indexOf(f)}\n`);
      }
      expect(toFileStat("sub/", 0, await r.getMeta("sub/")).kind).toBe("directory");
    } finally {
      await r.close();
    }
  });
});
