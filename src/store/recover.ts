import fs from "node:fs";
import path from "node:path";
import { DesFormatError, DesIoError } from "../errors.js";
import { parseName } from "../naming/name.js";
import { JOURNAL_HEADER } from "./journal-format.js";
import { Journal, scanJournal } from "./journal.js";
import type { Watermark } from "./journal.js";

export const JOURNAL_RE = /^([0-9]{12})\.wal$/;

export function journalName(seq: number): string {
  return `${String(seq).padStart(12, "0")}.wal`;
}

function later(a: Watermark | undefined, b: Watermark | undefined): Watermark | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.ms > a.ms || (b.ms === a.ms && b.seq > a.seq) ? b : a;
}

/**
 * Opens the journals a node left in `dir` (torn tails cut off), in sequence
 * order, and finds the latest (ms, seq) any of them records: the name
 * generator continues after it. Journals opened are pushed to `opened` as
 * they are, so the caller can close them if a later one fails.
 */
export async function recoverJournals(
  dir: string,
  nodeId: number,
  opened: Journal[],
): Promise<{ recovered: Journal[]; watermark: Watermark | undefined; seq: number }> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (e) {
    throw new DesIoError(`cannot list the journal folder ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const files = names.filter((f) => JOURNAL_RE.test(f)).sort();
  const recovered: Journal[] = [];
  let watermark: Watermark | undefined;
  let seq = 0;
  for (const f of files) {
    const file = path.join(dir, f);
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(file);
    } catch (e) {
      throw new DesIoError(`cannot read journal ${file}: ${(e as Error).message}`, { cause: e });
    }
    seq = Math.max(seq, Number(JOURNAL_RE.exec(f)![1]));
    if (allZero(bytes, 0, Math.min(bytes.length, JOURNAL_HEADER))) {
      // Created, its header never reached the disk: the header and the first reserve of zeros are
      // made durable together before a journal takes any put, so it never held an acknowledged one.
      if (allZero(bytes, JOURNAL_HEADER, bytes.length)) {
        await removeJournal(file);
        continue;
      }
      throw new DesFormatError(`${file} has no journal header but holds data (left as it is)`);
    }
    const scan = scanJournal(bytes, file);
    if (scan.nodeId !== nodeId) throw new DesFormatError(`${file} belongs to node ${scan.nodeId}, not ${nodeId}`);
    watermark = later(watermark, scan.watermark);
    for (const r of scan.records) watermark = later(watermark, { ms: r.ms, seq: parseName(r.name).seq });
    const j = await Journal.recover(file, scan, bytes.length);
    opened.push(j);
    recovered.push(j);
  }
  return { recovered, watermark, seq };
}

/** Removes a journal file that holds nothing (a DesIoError when it cannot). */
export async function removeJournal(file: string): Promise<void> {
  try {
    await fs.promises.rm(file, { force: true });
  } catch (e) {
    throw new DesIoError(`cannot remove journal ${file}: ${(e as Error).message}`, { cause: e });
  }
}

const ZEROS = Buffer.alloc(64 << 10);

/** True when bytes [from, to) of `b` are all zero. */
function allZero(b: Buffer, from: number, to: number): boolean {
  for (let o = from; o < to; o += ZEROS.length) {
    const end = Math.min(to, o + ZEROS.length);
    if (!b.subarray(o, end).equals(ZEROS.subarray(0, end - o))) return false;
  }
  return true;
}
