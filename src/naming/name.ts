import { DesInvalidArgumentError } from "../errors.js";

/**
 * Snowflake names, as the Python DES writes them:
 * `PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)` with
 * `F = (timestampBits << 16) | (nodeId << 8) | seq` (48 bits, upper-case hex)
 * and `CC = (sum of F's 6 big-endian bytes) & 0xFF`.
 */
export interface NameParts {
  /** Non-empty ASCII letters and digits. */
  readonly prefix: string;
  /** `YYYY-MM-DD`. */
  readonly day: string;
  /** The low `wrapBits` bits of the epoch milliseconds (0 .. 2^32 - 1). */
  readonly timestampBits: number;
  /** 0..255. */
  readonly nodeId: number;
  /** 0..255. */
  readonly seq: number;
}

export interface ParsedName extends NameParts {
  /** The 48-bit Snowflake value. */
  readonly f: number;
}

/** Why a text is not a Snowflake name. */
export type NameProblem = "malformed" | "checksum";

/** A text that is not a valid Snowflake name: malformed, or its checksum byte is wrong. */
export class DesNameError extends DesInvalidArgumentError {
  readonly problem: NameProblem;
  readonly text: string;
  constructor(problem: NameProblem, text: string, detail: string) {
    super(
      `${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)} is not a Snowflake name: ${detail}`,
    );
    this.problem = problem;
    this.text = text;
  }
}

const PREFIX_RE = /^[A-Za-z0-9]+$/;
const NAME_RE = /^([A-Za-z0-9]+)_([0-9]{8})_\(([0-9A-F]{12})_([0-9A-F]{2})\)$/;
const DAY_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const TWO_32 = 2 ** 32;

export function isValidPrefix(prefix: unknown): prefix is string {
  return typeof prefix === "string" && PREFIX_RE.test(prefix);
}

export function checkPrefix(prefix: unknown): string {
  if (!isValidPrefix(prefix)) {
    throw new DesInvalidArgumentError(
      `prefix must be non-empty ASCII letters and digits, not ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

export function checkByte(what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) {
    throw new DesInvalidArgumentError(`${what} must be an integer 0..255, not ${String(v)}`);
  }
  return v;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True when `y-m-d` is a real Gregorian calendar day. */
function realDay(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return d <= (m === 2 && leap ? 29 : MONTH_DAYS[m - 1]!);
}

/** Validates a `YYYY-MM-DD` day (a real calendar day, years 0000..9999). */
export function checkDay(day: unknown): string {
  const m = typeof day === "string" ? DAY_RE.exec(day) : null;
  if (!m || !realDay(Number(m[1]), Number(m[2]), Number(m[3]))) {
    throw new DesInvalidArgumentError(`day must be a real calendar day as YYYY-MM-DD, not ${JSON.stringify(day)}`);
  }
  return day as string;
}

/** The checksum byte: the sum of F's six big-endian bytes, modulo 256. */
export function nameChecksum(f: number): number {
  let sum = 0;
  let x = f;
  for (let i = 0; i < 6; i++) {
    sum += x % 256;
    x = Math.floor(x / 256);
  }
  return sum & 0xff;
}

function hex(v: number, digits: number): string {
  return v.toString(16).toUpperCase().padStart(digits, "0");
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, "0"));

/**
 * `FFFFFFFFFFFF_CC)`: the tail of a name for a valid F (an integer below
 * 2^48), its checksum byte included, from a table of byte pairs. For the
 * generator, whose parts are checked once; `formatName` checks every part.
 */
export function nameTail(f: number): string {
  const hi = Math.floor(f / 0x1000000);
  const lo = f - hi * 0x1000000;
  const b0 = hi >>> 16;
  const b1 = (hi >>> 8) & 0xff;
  const b2 = hi & 0xff;
  const b3 = lo >>> 16;
  const b4 = (lo >>> 8) & 0xff;
  const b5 = lo & 0xff;
  const sum = (b0 + b1 + b2 + b3 + b4 + b5) & 0xff;
  return `${HEX_BYTE[b0]!}${HEX_BYTE[b1]!}${HEX_BYTE[b2]!}${HEX_BYTE[b3]!}${HEX_BYTE[b4]!}${HEX_BYTE[b5]!}_${HEX_BYTE[sum]!})`;
}

/** `PREFIX_YYYYMMDD_(`: the head of every name of one prefix and day (both already checked). */
export function nameHead(prefix: string, day: string): string {
  return `${prefix}_${day.replace(/-/g, "")}_(`;
}

/** F from its parts (48 bits, exact in a double). */
export function snowflakeValue(timestampBits: number, nodeId: number, seq: number): number {
  return timestampBits * 65536 + nodeId * 256 + seq;
}

/** Formats a Snowflake name from its parts; every part is validated. */
export function formatName(parts: NameParts): string {
  const prefix = checkPrefix(parts.prefix);
  const day = checkDay(parts.day);
  const ts = parts.timestampBits;
  if (typeof ts !== "number" || !Number.isInteger(ts) || ts < 0 || ts >= TWO_32) {
    throw new DesInvalidArgumentError(`timestampBits must be an integer 0..2^32-1, not ${String(ts)}`);
  }
  const f = snowflakeValue(ts, checkByte("nodeId", parts.nodeId), checkByte("seq", parts.seq));
  return `${nameHead(prefix, day)}${hex(f, 12)}_${hex(nameChecksum(f), 2)})`;
}

/**
 * Parses a Snowflake name. Throws DesNameError (code DES_INVALID_ARGUMENT)
 * with `problem: "malformed"` for text of the wrong shape or an impossible
 * date, `problem: "checksum"` for a wrong checksum byte.
 */
export function parseName(name: string): ParsedName {
  if (typeof name !== "string") throw new DesNameError("malformed", String(name), "not a string");
  const m = name.length <= 300 ? NAME_RE.exec(name) : null;
  if (!m) throw new DesNameError("malformed", name, "expected PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC) with upper-case hex");
  const ymd = m[2]!;
  const y = Number(ymd.slice(0, 4));
  const mo = Number(ymd.slice(4, 6));
  const d = Number(ymd.slice(6, 8));
  if (!realDay(y, mo, d)) throw new DesNameError("malformed", name, `${ymd} is not a calendar day`);
  const f = parseInt(m[3]!, 16);
  const cc = parseInt(m[4]!, 16);
  const want = nameChecksum(f);
  if (cc !== want) throw new DesNameError("checksum", name, `checksum byte is ${hex(cc, 2)}, F gives ${hex(want, 2)}`);
  return {
    prefix: m[1]!,
    day: `${ymd.slice(0, 4)}-${ymd.slice(4, 6)}-${ymd.slice(6, 8)}`,
    timestampBits: Math.floor(f / 65536),
    nodeId: Math.floor(f / 256) % 256,
    seq: f % 256,
    f,
  };
}
