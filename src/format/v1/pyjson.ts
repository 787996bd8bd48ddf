/**
 * A JSON codec that behaves like Python 3's `json` module, because DES v1
 * meta sections are written by `json.dumps(meta, separators=(",", ":"))` and
 * must be byte-identical when this implementation writes them, and read with
 * `json.loads` semantics (NaN/Infinity, exact big integers, Python float repr).
 */
import { DesError, DesInvalidArgumentError } from "../../errors.js";

import { MAX_DEPTH, MAX_INT_DIGITS, describeError } from "./pyjson-common.js";
export type { PyJsonValue } from "./pyjson-common.js";

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

export interface PyJsonDumpsOptions {
  /** Refuse containers nested deeper than this (the outermost counts as 1). Default and maximum 1000. */
  readonly maxDepth?: number;
}

/** Python's json.dumps(value, separators=(",", ":")) with its defaults (ensure_ascii=True, allow_nan=True). */
export function pyJsonDumps(value: unknown, opts: PyJsonDumpsOptions = {}): string {
  try {
    return new Encoder(Math.min(MAX_DEPTH, opts.maxDepth ?? MAX_DEPTH)).encodeValue(value, 0);
  } catch (err) {
    // Getters, proxies or an exhausted stack must not leak foreign error types.
    if (err instanceof DesError) throw err;
    throw new DesInvalidArgumentError(`pyJsonDumps: cannot encode value (${describeError(err)})`);
  }
}

class Encoder {
  /** Containers currently being encoded, to report cycles clearly (Python: "Circular reference detected"). */
  private readonly ancestors = new Set<object>();

  constructor(private readonly maxDepth: number) {}

  encodeValue(v: unknown, depth: number): string {
    switch (typeof v) {
      case "string":
        return encodeString(v);
      case "number":
        return encodeNumber(v);
      case "boolean":
        return v ? "true" : "false";
      case "bigint":
        return encodeBigInt(v);
      case "object":
        return v === null ? "null" : this.encodeContainer(v, depth + 1);
      default:
        throw new DesInvalidArgumentError(`pyJsonDumps: cannot encode a value of type ${typeof v}`);
    }
  }

  private encodeContainer(v: object, depth: number): string {
    if (depth > this.maxDepth) {
      throw new DesInvalidArgumentError(`pyJsonDumps: nesting deeper than ${this.maxDepth} levels`);
    }
    if (this.ancestors.has(v)) throw new DesInvalidArgumentError("pyJsonDumps: circular reference");
    this.ancestors.add(v);
    const out = this.encodeContainerBody(v, depth);
    this.ancestors.delete(v);
    return out;
  }

  private encodeContainerBody(v: object, depth: number): string {
    if (Array.isArray(v)) return this.encodeArray(v, depth);
    if (v instanceof Map) return this.encodeMap(v, depth);
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      return this.encodeObject(v as Record<string, unknown>, depth);
    }
    throw new DesInvalidArgumentError(`pyJsonDumps: cannot encode an instance of ${className(v)}`);
  }

  private encodeArray(a: readonly unknown[], depth: number): string {
    let out = "[";
    for (let i = 0; i < a.length; i++) {
      const item = a[i];
      // Python has no undefined; JSON.stringify's silent "null" would change the data.
      if (item === undefined) throw new DesInvalidArgumentError(`pyJsonDumps: undefined at array index ${i}`);
      if (i > 0) out += ",";
      out += this.encodeValue(item, depth);
    }
    return out + "]";
  }

  private encodeObject(o: Record<string, unknown>, depth: number): string {
    let out = "{";
    let first = true;
    for (const key of Object.keys(o)) {
      const item = o[key];
      if (item === undefined) continue; // like JSON.stringify: an absent optional field
      out += (first ? "" : ",") + encodeString(key) + ":" + this.encodeValue(item, depth);
      first = false;
    }
    return out + "}";
  }

  private encodeMap(m: ReadonlyMap<unknown, unknown>, depth: number): string {
    let out = "{";
    let first = true;
    for (const [key, item] of m) {
      if (typeof key !== "string") {
        throw new DesInvalidArgumentError(`pyJsonDumps: Map keys must be strings, got ${typeof key}`);
      }
      if (item === undefined) continue; // same rule as plain objects
      out += (first ? "" : ",") + encodeString(key) + ":" + this.encodeValue(item, depth);
      first = false;
    }
    return out + "}";
  }
}

function encodeBigInt(v: bigint): string {
  const text = v.toString();
  const digits = v < 0n ? text.length - 1 : text.length;
  if (digits > MAX_INT_DIGITS) {
    throw new DesInvalidArgumentError(
      `pyJsonDumps: integer has ${digits} digits; Python refuses more than ${MAX_INT_DIGITS}`,
    );
  }
  return text;
}

function encodeNumber(v: number): string {
  // JS cannot tell 1 from 1.0; integral safe values are taken to be Python ints.
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) return String(v);
  if (v !== v) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (v === 0) return "-0.0"; // only -0 gets here
  return pythonFloatRepr(v);
}

/**
 * Python's repr(float): the shortest round-trip digits (JS computes the same
 * digits), laid out with Python's rule instead of JS's: exponent form when
 * decpt <= -4 or decpt > 16 (value = 0.d1d2... x 10^decpt), else fixed with ".0" if integral.
 */
function pythonFloatRepr(v: number): string {
  const sign = v < 0 ? "-" : "";
  const { digits, decpt } = shortestDigits(Math.abs(v));
  if (decpt <= -4 || decpt > 16) {
    const exp = decpt - 1;
    const mantissa = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    const expAbs = Math.abs(exp);
    return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (expAbs < 10 ? "0" : "") + expAbs;
  }
  if (decpt <= 0) return sign + "0." + "0".repeat(-decpt) + digits;
  if (decpt >= digits.length) return sign + digits + "0".repeat(decpt - digits.length) + ".0";
  return sign + digits.slice(0, decpt) + "." + digits.slice(decpt);
}

/** Digits (no leading/trailing zeros) and decimal point position of a positive finite number, taken from Number#toString. */
function shortestDigits(v: number): { digits: string; decpt: number } {
  const s = String(v);
  const ePos = s.indexOf("e");
  if (ePos >= 0) {
    // "d.ddde+X" / "de-X"
    const mantissa = s.slice(0, ePos).replace(".", "");
    return { digits: mantissa, decpt: Number(s.slice(ePos + 1)) + 1 };
  }
  const dot = s.indexOf(".");
  const intPart = dot >= 0 ? s.slice(0, dot) : s;
  const fracPart = dot >= 0 ? s.slice(dot + 1) : "";
  if (intPart === "0") {
    const lead = fracPart.length - fracPart.replace(/^0+/, "").length;
    return { digits: fracPart.slice(lead), decpt: -lead };
  }
  // Integral values below 1e21 print with trailing zeros ("123450000"); they are not significant digits.
  return { digits: (intPart + fracPart).replace(/0+$/, ""), decpt: intPart.length };
}

/** Strings that need no escaping at all: printable ASCII except '"' and '\'. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Python's ensure_ascii string encoding (c_encode_basestring_ascii): lower-case \uXXXX per UTF-16 code unit. */
function encodeString(s: string): string {
  if (PLAIN_ASCII.test(s)) return '"' + s + '"';
  let out = '"';
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(runStart, i) + escapeCodeUnit(c);
    runStart = i + 1;
  }
  return out + s.slice(runStart) + '"';
}

function escapeCodeUnit(c: number): string {
  switch (c) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return "\\\\";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    default:
      return "\\u" + c.toString(16).padStart(4, "0");
  }
}

function className(v: object): string {
  const ctor: unknown = (v as { constructor?: unknown }).constructor;
  return typeof ctor === "function" && ctor.name ? ctor.name : "a non-plain object";
}

export { pyJsonLoads } from "./pyjson-loads.js";
export type { PyJsonLoadsOptions, PyJsonMapValue } from "./pyjson-loads.js";
