/** One deterministic base archive and one deterministic append, shared by the crash tests and their child process. */
import { bodyOf } from "./data.js";
import type { DesAppendWriter, DesWriter } from "../../src/index.js";

export const BASE_ENTRIES = 60;

export function baseModel(): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (let i = 0; i < BASE_ENTRIES; i++) m.set(`base/${String(i).padStart(3, "0")}`, bodyOf(i, 200 + ((i * 37) % 900)));
  return m;
}

export async function fillBase(w: DesWriter): Promise<void> {
  for (const [name, body] of baseModel()) await w.add(name, body);
}

/** The append: 5 deletes, 5 replacements, then new entries big enough to take several writes (~3.5 MiB in all). */
export async function applyChanges(w: DesAppendWriter): Promise<void> {
  for (let i = 0; i < 5; i++) await w.delete(`base/${String(i).padStart(3, "0")}`);
  for (let i = 10; i < 15; i++) {
    const name = `base/${String(i).padStart(3, "0")}`;
    await w.delete(name);
    await w.add(name, bodyOf(i, 500, 1), { meta: { replaced: i } });
  }
  for (let i = 0; i < 12; i++)
    await w.add(`new/${i}`, bodyOf(1000 + i, 300_000), { compress: i % 3 === 0 ? "gzip" : "none" });
}

export function changedModel(): Map<string, Uint8Array> {
  const m = baseModel();
  for (let i = 0; i < 5; i++) m.delete(`base/${String(i).padStart(3, "0")}`);
  for (let i = 10; i < 15; i++) m.set(`base/${String(i).padStart(3, "0")}`, bodyOf(i, 500, 1));
  for (let i = 0; i < 12; i++) m.set(`new/${i}`, bodyOf(1000 + i, 300_000));
  return m;
}
