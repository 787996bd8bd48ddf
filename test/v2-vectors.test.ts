import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DesReader, LocalFolderStore } from "../src/index.js";
import { buildVector, vectorSpecs } from "../spec/vectors/generate.js";
import type { VectorSpec } from "../spec/vectors/generate.js";

const dir = path.resolve("spec/vectors");
const sha256 = (b: Uint8Array): string => crypto.createHash("sha256").update(b).digest("hex");

interface Manifest extends VectorSpec {
  archive_size: number;
  archive_sha256: string;
  list: string[];
  footer: { page_bits: number; entry_count: number };
  stats: Record<string, unknown>;
}

/** Opens a vector's archive and checks every entry, meta, stat and the listing against its manifest. */
async function readsBack(vdir: string, manifest: Manifest, entries: VectorSpec["entries"]): Promise<void> {
  const r = await DesReader.open(path.join(vdir, "archive.des"), {
    externalStore: new LocalFolderStore(path.join(vdir, "ext")),
  });
  expect(r.formatVersion).toBe(2);
  expect(r.size).toBe(manifest.archive_size);
  expect(r.entryCount).toBe(manifest.footer.entry_count);
  expect(await r.list()).toEqual(manifest.list);
  expect(manifest.list).toEqual(
    entries.map((e) => e.name).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
  );
  const bodies = await r.getMany(entries.map((e) => e.name));
  const metas = await r.getMetaMany(entries.map((e) => e.name));
  for (const e of entries) {
    expect(sha256(bodies.get(e.name)!), e.name).toBe(e.sha256);
    expect(metas.get(e.name) ?? null, e.name).toEqual(e.meta);
  }
  for (const [name, st] of Object.entries(manifest.stats))
    expect(await r.stat(name)).toEqual(JSON.parse(JSON.stringify(st)));
  expect((await r.verify()).ok).toBe(true);
  await r.close();
}

describe("v2 vectors in spec/vectors", () => {
  for (const spec of vectorSpecs()) {
    const vdir = path.join(dir, spec.name);
    const manifest = JSON.parse(fs.readFileSync(path.join(vdir, "manifest.json"), "utf8")) as Manifest;

    it(`${spec.name}: the committed manifest matches the generator`, () => {
      expect(manifest.entries).toEqual(JSON.parse(JSON.stringify(spec.entries)));
    });

    it(`${spec.name}: reads back exactly`, () => readsBack(vdir, manifest, spec.entries));

    it(`${spec.name}: the writer reproduces the archive byte for byte`, async () => {
      const ext = fs.mkdtempSync(path.join(os.tmpdir(), "des-v2vec-"));
      const bytes = await buildVector(spec, ext);
      expect(sha256(bytes)).toBe(manifest.archive_sha256);
      fs.rmSync(ext, { recursive: true, force: true });
    });
  }

  it("v2_multipage really has several pages", () => {
    const m = JSON.parse(fs.readFileSync(path.join(dir, "v2_multipage", "manifest.json"), "utf8")) as Manifest;
    expect(m.footer.page_bits).toBeGreaterThanOrEqual(2);
  });

  it("v2_multipage_rule1 (written with the earlier 16-32 KiB page rule, spec 3.4) still reads back exactly", async () => {
    const vdir = path.join(dir, "v2_multipage_rule1");
    const manifest = JSON.parse(fs.readFileSync(path.join(vdir, "manifest.json"), "utf8")) as Manifest;
    expect(manifest.footer.page_bits).toBe(2);
    await readsBack(vdir, manifest, manifest.entries);
  });
});
