/**
 * Generations against a model: random sequences of appends (add, delete,
 * replace) read back exactly, at the newest generation and at every older
 * one; and damage to a multi-generation archive (flips, truncations, a torn
 * tail) gives the data of some generation or a typed error, never wrong data.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DesError, DesReader, DesWriter, MemorySource } from "../src/index.js";
import { encodePendingLength, PENDING_OFFSET } from "../src/format/v2/pending.js";
import { bodyOf, rng } from "./helpers/data.js";
import { tempDir } from "./helpers/tmp.js";

type Model = Map<string, Uint8Array>;

type Op =
  | { kind: "add"; name: number; len: number; seed: number; gzip: boolean }
  | { kind: "delete"; pick: number }
  | { kind: "replace"; pick: number; len: number; seed: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      name: fc.integer({ min: 0, max: 60 }),
      len: fc.integer({ min: 0, max: 3000 }),
      seed: fc.nat(),
      gzip: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("replace" as const),
      pick: fc.nat(),
      len: fc.integer({ min: 0, max: 3000 }),
      seed: fc.nat(),
    }),
  },
);
const generationsArb = fc.array(fc.array(opArb, { minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 5 });

const nameOf = (n: number): string => `n/${n % 3 === 0 ? "ü" : ""}${n}`;

async function readAll(r: DesReader): Promise<Model> {
  return r.getMany(await r.list());
}

function expectSame(got: Model, want: Model, where: string): void {
  expect([...got.keys()].sort(), where).toEqual([...want.keys()].sort());
  for (const [k, v] of want) expect(Buffer.from(got.get(k)!).equals(Buffer.from(v)), `${where}: ${k}`).toBe(true);
}

describe("generations round trip (property)", () => {
  const dir = tempDir("des-append-prop-");
  let run = 0;

  it("every generation reads back as the model said, newest and older alike", { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(generationsArb, async (gens) => {
        const file = path.join(dir, `p${run++}.des`);
        const model: Model = new Map();
        await DesWriter.write(file, {}, async (w) => {
          for (let i = 0; i < 5; i++) {
            model.set(nameOf(100 + i), bodyOf(i, 100 * i));
            await w.add(nameOf(100 + i), bodyOf(i, 100 * i));
          }
        });
        const snapshots: Model[] = [new Map(model)];
        for (const ops of gens) {
          const w = await DesWriter.append(file);
          for (const op of ops) {
            const live = [...model.keys()].sort();
            if (op.kind === "add") {
              const name = nameOf(op.name);
              if (model.has(name)) continue;
              const body = bodyOf(op.seed, op.len);
              await w.add(name, body, { compress: op.gzip ? "gzip" : "none" });
              model.set(name, body);
            } else if (live.length > 0) {
              const name = live[op.pick % live.length]!;
              await w.delete(name);
              model.delete(name);
              if (op.kind === "replace") {
                const body = bodyOf(op.seed, op.len, 7);
                await w.add(name, body);
                model.set(name, body);
              }
            }
          }
          const report = await w.close();
          const changed = report.added + report.deleted > 0;
          if (changed) snapshots.push(new Map(model));
          expect(report.entries).toBe(model.size);
        }
        const r = await DesReader.open(file);
        expect(r.generation).toBe(snapshots.length);
        expectSame(await readAll(r), model, "newest");
        expect((await r.verify()).ok).toBe(true);
        const infos = await r.generations();
        expect(infos.length).toBe(snapshots.length);
        await r.close();
        for (let k = 1; k <= snapshots.length; k++) {
          const old = await DesReader.open(file, { generation: k });
          expectSame(await readAll(old), snapshots[k - 1]!, `generation ${k}`);
          await old.close();
        }
        fs.rmSync(file);
      }),
      { numRuns: 25, seed: 9, endOnFailure: true },
    );
  });
});

describe("damage to a multi-generation archive", () => {
  const dir = tempDir("des-append-fuzz-");

  it(
    "flips, truncations and torn tails give some generation's exact data or a typed error",
    { timeout: 60_000 },
    async () => {
      const file = path.join(dir, "multi.des");
      const snapshots: Model[] = [];
      const model: Model = new Map();
      await DesWriter.write(file, {}, async (w) => {
        for (let i = 0; i < 30; i++) {
          model.set(`e${i}`, bodyOf(i, 200 + i * 13));
          await w.add(`e${i}`, bodyOf(i, 200 + i * 13), { meta: { i } });
        }
      });
      snapshots.push(new Map(model));
      for (let g = 1; g <= 2; g++) {
        const w = await DesWriter.append(file);
        for (let i = 0; i < 8; i++) {
          await w.delete(`e${g * 8 + i}`);
          model.delete(`e${g * 8 + i}`);
        }
        for (let i = 0; i < 6; i++) {
          await w.add(`g${g}-${i}`, bodyOf(1000 * g + i, 500), { compress: i % 2 ? "gzip" : "none" });
          model.set(`g${g}-${i}`, bodyOf(1000 * g + i, 500));
        }
        await w.close();
        snapshots.push(new Map(model));
      }
      const good = fs.readFileSync(file);
      const lengths = (await (await DesReader.open(file)).generations()).map((g) => g.archiveLength);
      // A torn variant: an append in progress (pending_length set, bytes after the footer).
      const torn = Buffer.concat([good, Buffer.from(bodyOf(77, 3000))]);
      torn.set(encodePendingLength(good.length), PENDING_OFFSET);

      const random = rng(20261201);
      const cases: { label: string; bytes: Buffer }[] = [];
      for (let k = 0; k < 90; k++) {
        const base = k % 3 === 0 ? torn : good;
        const b = Buffer.from(base);
        // Half the flips land in the last 2 KiB (footers, root, pages), the rest anywhere.
        const at =
          k % 2 ? Math.floor(random() * b.length) : b.length - 1 - Math.floor(random() * Math.min(2048, b.length));
        b[at] = b[at]! ^ (1 + Math.floor(random() * 255));
        cases.push({ label: `flip ${k % 3 === 0 ? "torn" : "good"} @${at}`, bytes: b });
      }
      for (let k = 0; k < 30; k++) {
        const cut = Math.floor(random() * good.length);
        cases.push({ label: `truncate to ${cut}`, bytes: good.subarray(0, cut) });
      }
      for (const len of lengths)
        cases.push({ label: `truncate to generation length ${len}`, bytes: good.subarray(0, len) });
      const header = Buffer.from(torn);
      header.set(encodePendingLength(good.length - 1), PENDING_OFFSET);
      cases.push({ label: "pending length off by one", bytes: header });

      let readable = 0;
      for (const c of cases) {
        let r: DesReader | undefined;
        try {
          r = await DesReader.open(new MemorySource(c.bytes));
          const got = await readAll(r);
          const gen = r.generation;
          expect(gen >= 1 && gen <= 3, c.label).toBe(true);
          expectSame(got, snapshots[gen - 1]!, `${c.label} (generation ${gen})`);
          readable++;
        } catch (e) {
          expect(e instanceof DesError, `${c.label}: ${String(e)}`).toBe(true);
        } finally {
          await r?.close();
        }
      }
      // The generation lengths and the torn variant (unless its flip hit the last footer) must open.
      expect(readable).toBeGreaterThanOrEqual(lengths.length + 10);
    },
  );
});
