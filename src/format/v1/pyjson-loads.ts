/**
 * The decoding half of the Python-JSON codec (see pyjson.ts): `json.loads`
 * semantics, optionally with objects as Maps (Python's key order and
 * integer-like keys kept as they are).
 */
import { DesError, DesFormatError, DesInvalidArgumentError } from "../../errors.js";
import { MAX_DEPTH, MAX_INT_DIGITS, describeError } from "./pyjson-common.js";
import type { PyJsonValue } from "./pyjson-common.js";

/** A Python-JSON value with every object as a Map in document order (`pyJsonLoads(text, { maps: true })`). */
export type PyJsonMapValue = null | boolean | number | bigint | string | PyJsonMapValue[] | Map<string, PyJsonMapValue>;

export interface PyJsonLoadsOptions {
  /** Objects become Maps in document order (a repeated key keeps its first position and its last value, as in a Python dict). */
  readonly maps?: boolean;
}

/** What the parser builds: a PyJsonValue, or with `maps` a PyJsonMapValue. */
type Decoded =
  null | boolean | number | bigint | string | Decoded[] | { [key: string]: Decoded } | Map<string, Decoded>;

/** Python's json.loads semantics. Accepts a string or UTF-8 bytes. */
export function pyJsonLoads(text: string | Uint8Array, opts?: { readonly maps?: false }): PyJsonValue;
export function pyJsonLoads(text: string | Uint8Array, opts: { readonly maps: true }): PyJsonMapValue;
export function pyJsonLoads(text: string | Uint8Array, opts?: PyJsonLoadsOptions): PyJsonValue | PyJsonMapValue;
export function pyJsonLoads(text: string | Uint8Array, opts: PyJsonLoadsOptions = {}): PyJsonValue | PyJsonMapValue {
  const s = toText(text);
  // Python: "Unexpected UTF-8 BOM (decode using utf-8-sig)".
  if (s.charCodeAt(0) === 0xfeff) throw new DesFormatError("pyJsonLoads: unexpected UTF-8 BOM at char 0");
  try {
    return new Parser(s, opts.maps === true).parseDocument() as PyJsonValue | PyJsonMapValue;
  } catch (err) {
    // Only an exhausted stack (caller already deep) or similar can land here.
    if (err instanceof DesError) throw err;
    throw new DesFormatError(`pyJsonLoads: cannot parse (${describeError(err)})`, { cause: err });
  }
}

// fatal: invalid UTF-8 is an error, as in Python; ignoreBOM: keep the BOM so it is rejected like Python's str path.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function toText(text: string | Uint8Array): string {
  if (typeof text === "string") return text;
  if (!(text instanceof Uint8Array)) {
    throw new DesInvalidArgumentError("pyJsonLoads: expected a string or a Uint8Array");
  }
  try {
    return utf8Decoder.decode(text);
  } catch (err) {
    throw new DesFormatError("pyJsonLoads: input is not valid UTF-8", { cause: err });
  }
}

const enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Slash = 0x2f,
  Zero = 0x30,
  One = 0x31,
  Nine = 0x39,
  Colon = 0x3a,
  UpperE = 0x45,
  UpperI = 0x49,
  UpperN = 0x4e,
  LBracket = 0x5b,
  Backslash = 0x5c,
  RBracket = 0x5d,
  LowerB = 0x62,
  LowerE = 0x65,
  LowerF = 0x66,
  LowerN = 0x6e,
  LowerR = 0x72,
  LowerT = 0x74,
  LowerU = 0x75,
  LBrace = 0x7b,
  RBrace = 0x7d,
}

/**
 * Names that live on Object.prototype: plain assignment would hit the
 * __proto__ setter (or fail on a frozen prototype), so these are defined as own properties.
 */
const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

function setOwn(obj: Record<string, Decoded>, key: string, value: Decoded): void {
  if (PROTOTYPE_NAMES.has(key)) {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    // Re-assigning an existing key keeps its first position: Python dict semantics for duplicates.
    obj[key] = value;
  }
}

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Recursive descent over the string with an index; mirrors CPython's _json.c scanner (strict=True). */
class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly s: string,
    private readonly maps: boolean,
  ) {}

  parseDocument(): Decoded {
    this.skipWhitespace();
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.pos !== this.s.length) this.fail("extra data");
    return value;
  }

  private fail(what: string, at: number = this.pos): never {
    throw new DesFormatError(`pyJsonLoads: ${what} at char ${at}`);
  }

  private skipWhitespace(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c !== Ch.Space && c !== Ch.Lf && c !== Ch.Cr && c !== Ch.Tab) break;
      i++;
    }
    this.pos = i;
  }

  private parseValue(): Decoded {
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case Ch.Quote:
        this.pos++;
        return this.parseString();
      case Ch.LBrace:
        return this.parseObject();
      case Ch.LBracket:
        return this.parseArray();
      case Ch.LowerN:
        return this.parseWord("null", null);
      case Ch.LowerT:
        return this.parseWord("true", true);
      case Ch.LowerF:
        return this.parseWord("false", false);
      case Ch.UpperN:
        return this.parseWord("NaN", NaN);
      case Ch.UpperI:
        return this.parseWord("Infinity", Infinity);
      case Ch.Minus:
        if (this.s.charCodeAt(this.pos + 1) === Ch.UpperI) return this.parseWord("-Infinity", -Infinity);
        return this.parseNumber();
      default:
        if (isDigit(c)) return this.parseNumber();
        return this.fail("expecting value");
    }
  }

  private parseWord<T extends PyJsonValue>(word: string, value: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail("expecting value");
    this.pos += word.length;
    return value;
  }

  /** Grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, with Python's backtracking on "1." and "1e". */
  private parseNumber(): number | bigint {
    const s = this.s;
    const start = this.pos;
    let i = start;
    const negative = s.charCodeAt(i) === Ch.Minus;
    if (negative) i++;
    const first = s.charCodeAt(i);
    let value = 0;
    if (first === Ch.Zero) {
      i++;
    } else if (first >= Ch.One && first <= Ch.Nine) {
      for (let c = first; isDigit(c); c = s.charCodeAt(++i)) value = value * 10 + (c - Ch.Zero);
    } else {
      return this.fail("expecting value", start);
    }
    const intEnd = i;
    let isFloat = false;
    if (s.charCodeAt(i) === Ch.Dot && isDigit(s.charCodeAt(i + 1))) {
      i += 2;
      while (isDigit(s.charCodeAt(i))) i++;
      isFloat = true;
    }
    const e = s.charCodeAt(i);
    if (e === Ch.LowerE || e === Ch.UpperE) {
      let j = i + 1;
      const signChar = s.charCodeAt(j);
      if (signChar === Ch.Plus || signChar === Ch.Minus) j++;
      if (isDigit(s.charCodeAt(j))) {
        while (isDigit(s.charCodeAt(j))) j++;
        i = j;
        isFloat = true;
      }
    }
    this.pos = i;
    // Number() accepts exactly this grammar and rounds correctly, like Python's float().
    if (isFloat) return Number(s.slice(start, i));
    const digitCount = intEnd - start - (negative ? 1 : 0);
    // Up to 15 digits the accumulated value is exact. Python ints have no -0.
    if (digitCount <= 15) return negative && value !== 0 ? -value : value;
    return this.bigInteger(s.slice(start, intEnd), digitCount, start);
  }

  private bigInteger(text: string, digitCount: number, start: number): number | bigint {
    if (digitCount > MAX_INT_DIGITS) {
      this.fail(`integer with ${digitCount} digits exceeds Python's limit of ${MAX_INT_DIGITS}`, start);
    }
    // Anything beyond 2^53 - 1 rounds to at least 2^53, which is not "safe", so this test is exact.
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }

  /** Called just after the opening quote. */
  private parseString(): string {
    const s = this.s;
    const start = this.pos;
    for (let i = start; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === Ch.Quote) {
        this.pos = i + 1;
        return s.slice(start, i);
      }
      if (c === Ch.Backslash) return this.parseEscapedString(start, i);
      if (c < 0x20) this.fail("invalid control character", i);
    }
    return this.fail("unterminated string", start - 1);
  }

  /** Slow path once an escape is seen; `i` is at the first backslash. */
  private parseEscapedString(start: number, i: number): string {
    const s = this.s;
    let out = s.slice(start, i);
    let runStart = i;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === Ch.Quote) {
        this.pos = i + 1;
        return out + s.slice(runStart, i);
      }
      if (c === Ch.Backslash) {
        out += s.slice(runStart, i) + this.decodeEscape(i);
        i += s.charCodeAt(i + 1) === Ch.LowerU ? 6 : 2;
        runStart = i;
      } else {
        if (c < 0x20) this.fail("invalid control character", i);
        i++;
      }
    }
    return this.fail("unterminated string", start - 1);
  }

  /**
   * Decodes the escape whose backslash is at `i`.
   * Each \uXXXX becomes one UTF-16 code unit: a pair of surrogate escapes thus
   * yields the astral character (as Python's joining does) and a lone one stays lone.
   */
  private decodeEscape(i: number): string {
    switch (this.s.charCodeAt(i + 1)) {
      case Ch.Quote:
        return '"';
      case Ch.Backslash:
        return "\\";
      case Ch.Slash:
        return "/";
      case Ch.LowerB:
        return "\b";
      case Ch.LowerF:
        return "\f";
      case Ch.LowerN:
        return "\n";
      case Ch.LowerR:
        return "\r";
      case Ch.LowerT:
        return "\t";
      case Ch.LowerU:
        return String.fromCharCode(this.readHex4(i + 2, i));
      default:
        return this.fail("invalid \\escape", i);
    }
  }

  private readHex4(at: number, escapeStart: number): number {
    const s = this.s;
    const a = hexValue(s.charCodeAt(at));
    const b = hexValue(s.charCodeAt(at + 1));
    const c = hexValue(s.charCodeAt(at + 2));
    const d = hexValue(s.charCodeAt(at + 3));
    if ((a | b | c | d) < 0) this.fail("invalid \\uXXXX escape", escapeStart);
    return (a << 12) | (b << 8) | (c << 4) | d;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
  }

  private parseArray(): Decoded[] {
    this.enter();
    this.pos++; // '['
    this.skipWhitespace();
    const items: Decoded[] = [];
    if (this.s.charCodeAt(this.pos) === Ch.RBracket) {
      this.pos++;
      this.depth--;
      return items;
    }
    for (;;) {
      items.push(this.parseValue());
      this.skipWhitespace();
      const c = this.s.charCodeAt(this.pos++);
      if (c === Ch.RBracket) break;
      if (c !== Ch.Comma) this.fail("expecting ',' delimiter", this.pos - 1);
      this.skipWhitespace();
    }
    this.depth--;
    return items;
  }

  private parseObject(): { [key: string]: Decoded } | Map<string, Decoded> {
    this.enter();
    this.pos++; // '{'
    this.skipWhitespace();
    const obj: { [key: string]: Decoded } = {};
    const map = this.maps ? new Map<string, Decoded>() : undefined;
    if (this.s.charCodeAt(this.pos) === Ch.RBrace) {
      this.pos++;
      this.depth--;
      return map ?? obj;
    }
    for (;;) {
      if (this.s.charCodeAt(this.pos) !== Ch.Quote) this.fail("expecting property name enclosed in double quotes");
      this.pos++;
      const key = this.parseString();
      this.skipWhitespace();
      if (this.s.charCodeAt(this.pos) !== Ch.Colon) this.fail("expecting ':' delimiter");
      this.pos++;
      this.skipWhitespace();
      if (map) map.set(key, this.parseValue());
      else setOwn(obj, key, this.parseValue());
      this.skipWhitespace();
      const c = this.s.charCodeAt(this.pos++);
      if (c === Ch.RBrace) break;
      if (c !== Ch.Comma) this.fail("expecting ',' delimiter", this.pos - 1);
      this.skipWhitespace();
    }
    this.depth--;
    return map ?? obj;
  }
}
