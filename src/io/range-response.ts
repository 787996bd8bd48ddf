import { DesAbortedError, DesChangedError, DesFormatError, DesIoError } from "../errors.js";
import { concatBytes } from "../format/bytes.js";
import { TransientError } from "./retry.js";
import type { Attempt } from "./timeout.js";

/**
 * The one check of an answer to a range GET, shared by the HTTP and S3
 * sources: the status, `Content-Range`, the object's size and version, and
 * the fallback for servers that ignore `Range` (200 with the whole object).
 * `planRangeBody` decides from the headers what to take from the body;
 * `collectBody` takes exactly that and no more.
 */

/** A parsed `Content-Range`: `bytes <start>-<end>/<total>` (total may be a star), or a star range with a total on a 416. */
export interface ContentRange {
  readonly start: number | undefined;
  readonly end: number | undefined;
  readonly total: number | undefined;
}

export function parseContentRange(value: string | null | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const num = (s: string | undefined): number | undefined => {
    if (s === undefined || s === "*") return undefined;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  return { start: num(m[1]), end: num(m[2]), total: num(m[3]) };
}

/** What was asked: the last `tail` bytes (a suffix range), or `length` bytes at `offset`. */
export type RangeAsk = { readonly tail: number } | { readonly offset: number; readonly length: number };

/** The parts of a response the check needs, however the backend represents them. */
export interface RangeAnswer {
  /** 200, 206 or 416 (other statuses are the backend's business). */
  readonly status: number;
  readonly contentRange: string | null | undefined;
  readonly contentLength: number | undefined;
  /** The response's version (ETag, or Last-Modified for HTTP servers without ETags). */
  readonly version: string | undefined;
}

/** What the opening this request serves knows about the object. */
export interface RangeExpect {
  readonly size?: number | undefined;
  readonly version?: string | undefined;
  /** Fail on a 200 answer instead of reading the needed prefix of the whole object. */
  readonly requireRanges?: boolean | undefined;
}

/**
 * What to take from the body:
 * - `exact`: a 206; exactly `length` bytes;
 * - `window`: a 200 (Range ignored); body bytes `[from, to)`, reading no
 *   further than `to`; with `to` undefined (a suffix range and no
 *   Content-Length) the last `keep` bytes of the whole body;
 * - `empty`: a suffix range of an empty object.
 */
export type BodyPlan =
  | { readonly kind: "exact"; readonly length: number; readonly total: number | undefined }
  | {
      readonly kind: "window";
      readonly from: number;
      readonly to: number | undefined;
      readonly keep: number;
      readonly total: number | undefined;
    }
  | { readonly kind: "empty" };

function isTail(ask: RangeAsk): ask is { readonly tail: number } {
  return "tail" in ask;
}

export function describeAsk(ask: RangeAsk): string {
  return isTail(ask) ? `bytes=-${ask.tail}` : `bytes=${ask.offset}-${ask.offset + ask.length - 1}`;
}

/** Checks the headers of an answer to `ask`; throws DesChangedError when the object is not the one expected. */
export function planRangeBody(ask: RangeAsk, ans: RangeAnswer, expect: RangeExpect, key: string): BodyPlan {
  if (expect.version !== undefined && ans.version !== undefined && ans.version !== expect.version) {
    throw new DesChangedError(`${key} changed (${expect.version} -> ${ans.version})`);
  }
  const cr = parseContentRange(ans.contentRange);
  if (ans.status === 416) {
    if (!isTail(ask)) throw new DesChangedError(`${key} no longer holds bytes ${ask.offset}+${ask.length} (416)`);
    // Only an empty object cannot satisfy a suffix range.
    if (cr === undefined || cr.total === 0) return { kind: "empty" };
    throw new DesIoError(`${key}: the server refused the suffix range (416, ${JSON.stringify(ans.contentRange)})`);
  }
  if (ans.status === 200) {
    if (expect.requireRanges)
      throw new DesIoError(
        `${key}: the server ignores Range requests (200 with the whole object to ${describeAsk(ask)})`,
      );
    const total = ans.contentLength;
    if (expect.size !== undefined && total !== undefined && total !== expect.size) {
      throw new DesChangedError(`${key} changed size (${expect.size} -> ${total})`);
    }
    if (isTail(ask)) {
      if (total === undefined) return { kind: "window", from: 0, to: undefined, keep: ask.tail, total };
      return { kind: "window", from: Math.max(0, total - ask.tail), to: total, keep: ask.tail, total };
    }
    if (total !== undefined && ask.offset + ask.length > total) {
      throw new DesFormatError(`range ${ask.offset}+${ask.length} is past the end of ${key} (${total} bytes)`);
    }
    return { kind: "window", from: ask.offset, to: ask.offset + ask.length, keep: ask.length, total };
  }
  if (ans.status !== 206) throw new DesIoError(`${key}: unexpected HTTP ${ans.status} to ${describeAsk(ask)}`);
  const bad = (): DesIoError =>
    new DesIoError(
      `${key}: asked for ${describeAsk(ask)}, got Content-Range ${JSON.stringify(ans.contentRange ?? null)}`,
    );
  if (!cr || cr.start === undefined || cr.end === undefined || cr.end < cr.start) throw bad();
  if (isTail(ask)) {
    if (cr.total === undefined || cr.end !== cr.total - 1 || cr.end - cr.start + 1 !== Math.min(ask.tail, cr.total))
      throw bad();
    return { kind: "exact", length: cr.end - cr.start + 1, total: cr.total };
  }
  if (cr.total !== undefined && expect.size !== undefined && cr.total !== expect.size) {
    throw new DesChangedError(`${key} changed size (${expect.size} -> ${cr.total})`);
  }
  if (cr.start !== ask.offset || cr.end !== ask.offset + ask.length - 1) throw bad();
  return { kind: "exact", length: ask.length, total: cr.total };
}

/** The bytes a plan asked for, the object's size when the answer told it, and how many body bytes were received. */
export interface CollectedBody {
  readonly bytes: Uint8Array;
  readonly total: number | undefined;
  readonly received: number;
}

/**
 * Reads what `plan` asks for from a body. A body that breaks midway or ends
 * early is a TransientError (worth another GET); one longer than the range
 * is a DesIoError. A window stops reading (and releases the body) as soon
 * as its last byte arrived, so a server that ignores Range costs the bytes
 * up to the end of the range, never the whole object, and memory stays at
 * the range's length.
 */
export async function collectBody(
  body: AsyncIterable<Uint8Array> | null | undefined,
  plan: BodyPlan,
  attempt: Attempt,
  key: string,
): Promise<CollectedBody> {
  if (plan.kind === "empty") return { bytes: new Uint8Array(0), total: 0, received: 0 };
  const exact = plan.kind === "exact";
  const want = exact ? plan.length : plan.to === undefined ? undefined : plan.to - plan.from;
  const from = exact ? 0 : plan.from;
  const keep = exact ? plan.length : plan.keep;
  const out = want !== undefined ? new Uint8Array(want) : undefined;
  const ring: Uint8Array[] = [];
  let ringBytes = 0;
  let pos = 0;
  let filled = 0;
  attempt.body();
  if (body) {
    try {
      for await (const c of body) {
        attempt.touch();
        if (out) {
          if (exact && filled + c.length > out.length)
            throw new DesIoError(`${key}: the response body is longer than the ${out.length} bytes asked for`);
          const lo = Math.max(from, pos);
          const hi = Math.min(from + out.length, pos + c.length);
          if (hi > lo) {
            out.set(c.subarray(lo - pos, hi - pos), lo - from);
            filled += hi - lo;
          }
          pos += c.length;
          if (!exact && filled === out.length) break;
        } else {
          // Suffix of a body of unknown length: keep only the chunks that can hold the last `keep` bytes.
          ring.push(c);
          ringBytes += c.length;
          pos += c.length;
          while (ring.length > 1 && ringBytes - ring[0]!.length >= keep) ringBytes -= ring.shift()!.length;
        }
      }
    } catch (e) {
      if (e instanceof DesIoError) throw e;
      if (attempt.timedOut) throw attempt.timeoutError();
      if (attempt.signal.aborted) throw new DesAbortedError(undefined, { cause: attempt.signal.reason });
      throw new TransientError(`${key}: the response body failed after ${pos} bytes: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  if (attempt.timedOut) throw attempt.timeoutError();
  if (attempt.signal.aborted) throw new DesAbortedError(undefined, { cause: attempt.signal.reason });
  if (!out) {
    const all = concatBytes(ring);
    return { bytes: all.slice(Math.max(0, all.length - keep)), total: pos, received: pos };
  }
  if (filled !== out.length) throw new TransientError(`${key}: short body: ${filled} of ${out.length} bytes`);
  return { bytes: out, total: plan.total, received: pos };
}
