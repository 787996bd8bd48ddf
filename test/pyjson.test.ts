import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DesFormatError, DesInvalidArgumentError } from "../src/errors.js";
import { pyJsonDumps, pyJsonLoads } from "../src/format/v1/pyjson.js";

// ---------------------------------------------------------------------------
// Tagged form: a lossless, JSON-transportable description of a value, so that
// JS and Python can exchange values without either JSON layer blurring
// int/float, -0, NaN, big integers, lone surrogates or key order.
//   ["n", "12"]  safe integer (a JS number, a Python int)
//   ["f", hex]   IEEE double as 16 big-endian hex digits, or "nan"
//   ["b", "12"]  bigint / Python int
//   ["s", [utf16 code units]]
//   ["a", [items]]   ["o", [[keyUnits, item]...]]   ["m", ...] (a JS Map)
// ---------------------------------------------------------------------------

type Tagged = null | boolean | [string, unknown];
type Pair = [number[], Tagged];

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function floatHex(v: number): string {
  if (Number.isNaN(v)) return "nan";
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  let out = "";
  for (let i = 0; i < 8; i++) out += view.getUint8(i).toString(16).padStart(2, "0");
  return out;
}

function toUnits(s: string): number[] {
  const units: number[] = [];
  for (let i = 0; i < s.length; i++) units.push(s.charCodeAt(i));
  return units;
}

function fromUnits(units: readonly number[]): string {
  let out = "";
  for (let i = 0; i < units.length; i += 4096) out += String.fromCharCode(...units.slice(i, i + 4096));
  return out;
}

function tag(v: unknown): Tagged {
  if (v === null || typeof v === "boolean") return v;
  if (typeof v === "number") {
    return Number.isSafeInteger(v) && !Object.is(v, -0) ? ["n", String(v)] : ["f", floatHex(v)];
  }
  if (typeof v === "bigint") return ["b", v.toString()];
  if (typeof v === "string") return ["s", toUnits(v)];
  if (Array.isArray(v)) return ["a", v.map(tag)];
  if (v instanceof Map) return ["m", [...v].map(([k, x]): Pair => [toUnits(k as string), tag(x)])];
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return ["o", Object.keys(o).map((k): Pair => [toUnits(k), tag(o[k])])];
  }
  throw new Error(`cannot tag ${typeof v}`);
}

/** What pyJsonLoads must return for a value, as a Tagged: small ints are numbers, keys follow JS property order. */
function jsView(t: Tagged): Tagged {
  if (t === null || typeof t === "boolean") return t;
  const [kind, payload] = t;
  switch (kind) {
    case "b": {
      const n = BigInt(payload as string);
      return n <= MAX_SAFE && n >= -MAX_SAFE ? ["n", n.toString()] : t;
    }
    case "a":
      return ["a", (payload as Tagged[]).map(jsView)];
    case "o":
    case "m":
      return ["o", inJsKeyOrder((payload as Pair[]).map(([k, x]): Pair => [k, jsView(x)]))];
    default:
      return t;
  }
}

/** Ordinary JS objects list integer-like keys first, ascending; this is the order a parsed object can have. */
function inJsKeyOrder(pairs: Pair[]): Pair[] {
  const holder: Record<string, Pair> = Object.create(null) as Record<string, Pair>;
  for (const pair of pairs) holder[fromUnits(pair[0])] = pair;
  return Object.keys(holder).map((k) => holder[k] as Pair);
}

/** Readable yet exact rendering for table tests: shows -0, bigint vs number, own keys in order. */
function show(v: unknown): string {
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v); // escapes lone surrogates
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (v instanceof Map) return `Map{${[...v].map(([k, x]) => `${show(k)}: ${show(x)}`).join(", ")}}`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .map((k) => `${JSON.stringify(k)}: ${show(o[k])}`)
    .join(", ")}}`;
}

const LONE_SURROGATE = /\p{Cs}/u;

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The real python3, spawned once per file with a JSON-lines batch.
// ---------------------------------------------------------------------------

const PYTHON_DRIVER = String.raw`
import base64, json, math, random, struct, sys

MAX_SAFE = 2**53 - 1

def units_to_str(units):
    return struct.pack("<%dH" % len(units), *units).decode("utf-16-le", "surrogatepass")

def str_to_units(s):
    b = s.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack("<%dH" % (len(b) // 2), b))

def build(t):
    if t is None or isinstance(t, bool):
        return t
    kind, p = t
    if kind in ("n", "b"):
        return int(p)
    if kind == "f":
        return math.nan if p == "nan" else struct.unpack(">d", bytes.fromhex(p))[0]
    if kind == "s":
        return units_to_str(p)
    if kind == "a":
        return [build(x) for x in p]
    return {units_to_str(k): build(x) for k, x in p}

def js_view(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return ["n", str(v)] if abs(v) <= MAX_SAFE else ["b", str(v)]
    if isinstance(v, float):
        if math.isnan(v):
            return ["f", "nan"]
        # JS cannot keep 1.0 apart from 1; only -0.0 and unsafe integral floats stay floats.
        if v.is_integer() and abs(v) <= MAX_SAFE and not (v == 0 and math.copysign(1.0, v) < 0):
            return ["n", str(int(v))]
        return ["f", struct.pack(">d", v).hex()]
    if isinstance(v, str):
        return ["s", str_to_units(v)]
    if isinstance(v, list):
        return ["a", [js_view(x) for x in v]]
    return ["o", [[str_to_units(k), js_view(x)] for k, x in v.items()]]

SPECIAL_FLOATS = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -2.0, 0.1, 1.5, 1e15, 1e16, 1e17,
    123456789012345678.0, 2.0**53, 2.0**53 + 2, -(2.0**53), 9007199254740991.0, 1e-4, 1e-5, 0.00012,
    5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e21, 1e22, 9999999999999998.0]
SPECIAL_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "0", "1", "10", "-1", "01",
    "1.5", "4294967294", "4294967295", "size", "", "a", "b"]
CP_RANGES = [(0x20, 0x7e), (0x20, 0x7e), (0, 0x1f), (0x7f, 0xff), (0x100, 0xd7ff), (0xd800, 0xdfff),
    (0xe000, 0xffff), (0x10000, 0x10ffff)]

def rand_float(rng):
    r = rng.random()
    if r < 0.3:
        return rng.choice(SPECIAL_FLOATS)
    if r < 0.6:
        return struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0]
    return rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 308)

def rand_int(rng):
    r = rng.random()
    if r < 0.4:
        return rng.randint(-1000, 1000)
    if r < 0.6:
        return rng.choice([1, -1]) * (2**53 + rng.randint(-3, 3))
    if r < 0.8:
        return rng.randint(-2**64, 2**64)
    return rng.randint(-10**rng.randint(1, 90), 10**rng.randint(1, 90))

def rand_str(rng):
    out = []
    for _ in range(rng.randint(0, 10)):
        if rng.random() < 0.1:
            out.append(rng.choice('"\\/'))
        else:
            lo, hi = rng.choice(CP_RANGES)
            out.append(chr(rng.randint(lo, hi)))
    return "".join(out)

def rand_value(rng, depth):
    r = rng.random()
    if depth < 4 and r < 0.25:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 4 and r < 0.5:
        d = {}
        for _ in range(rng.randint(0, 4)):
            k = rng.choice(SPECIAL_KEYS) if rng.random() < 0.3 else rand_str(rng)
            d[k] = rand_value(rng, depth + 1)
        return d
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.1:
        return rng.random() < 0.5
    if r < 0.4:
        return rand_int(rng)
    if r < 0.7:
        return rand_float(rng)
    return rand_str(rng)

def dumps_some_way(rng, v):
    style = rng.randint(0, 3)
    if style == 0:
        return json.dumps(v)
    if style == 1:
        return json.dumps(v, separators=(",", ":"))
    if style == 2:
        return json.dumps(v, ensure_ascii=False, indent=rng.choice([None, 0, 2, "\t"]))
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

def gen_cases(seed, count):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        v = rand_value(rng, 0)
        text = dumps_some_way(rng, v)
        try:
            utf8 = base64.b64encode(text.encode("utf-8")).decode("ascii")
        except UnicodeEncodeError:  # lone surrogates: not representable as UTF-8 bytes
            utf8 = None
        cases.append({"text": str_to_units(text), "utf8": utf8, "view": js_view(v)})
    return cases

def handle(req):
    op = req["op"]
    try:
        if op == "dumps":
            return {"ok": json.dumps(build(req["v"]), separators=(",", ":"))}
        if op == "loads":
            return {"ok": js_view(json.loads(units_to_str(req["text"])))}
        if op == "gen":
            return {"ok": gen_cases(req["seed"], req["count"])}
    except Exception as e:
        return {"error": type(e).__name__}
    return {"error": "bad op"}

for line in sys.stdin:
    if line.strip():
        sys.stdout.write(json.dumps(handle(json.loads(line))) + "\n")
`;

type PyRequest =
  { op: "dumps"; v: Tagged } | { op: "loads"; text: number[] } | { op: "gen"; seed: number; count: number };
type PyResponse = { ok: unknown } | { error: string };

function runPython(requests: readonly PyRequest[]): PyResponse[] {
  const result = spawnSync("python3", ["-c", PYTHON_DRIVER], {
    input: requests.map((r) => JSON.stringify(r)).join("\n") + "\n",
    encoding: "utf8",
    maxBuffer: 1 << 28,
    env: { ...process.env, PYTHONIOENCODING: "utf-8" },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`python3 failed (${result.status}): ${result.stderr}`);
  const lines = result.stdout.split("\n").filter((l) => l.length > 0);
  if (lines.length !== requests.length) throw new Error(`python3 answered ${lines.length}/${requests.length}`);
  return lines.map((l) => JSON.parse(l) as PyResponse);
}

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const stringArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 4 }),
  fc.string({ unit: "binary-ascii", maxLength: 8 }),
  fc.string({ unit: anyCodeUnit, maxLength: 8 }), // lone surrogates
  fc.constantFrom("", '"', "\\", "/", "\u2028", "\ud800", "\udc00\ud800", "\u{1f600}", "\x7f", "\ufeff"),
);
const keyArb = fc.oneof(
  stringArb,
  fc.constantFrom(
    "__proto__",
    "constructor",
    "toString",
    "0",
    "1",
    "10",
    "-1",
    "01",
    "4294967294",
    "4294967295",
    "size",
  ),
);
const floatArb = fc.oneof(
  fc.double(),
  fc.double({ min: -1e-300, max: 1e-300 }),
  fc.double({ min: -1e20, max: 1e20 }),
  fc.constantFrom(-0, NaN, Infinity, -Infinity, 5e-324, 1e16, 1e-5, 1e-4, 2 ** 53, 1.7976931348623157e308, 0.1),
);
const intArb = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER),
);
const bigArb = fc.oneof(
  fc.bigInt({ min: -(2n ** 256n), max: 2n ** 256n }),
  fc.bigInt({ min: 2n ** 53n - 3n, max: 2n ** 53n + 3n }).map((n) => -n),
  fc.bigInt({ min: 2n ** 53n - 3n, max: 2n ** 53n + 3n }),
);
const leafArb: fc.Arbitrary<unknown> = fc.oneof(fc.constant(null), fc.boolean(), intArb, floatArb, bigArb, stringArb);
const { value: valueArb } = fc.letrec<{ value: unknown; array: unknown[]; object: unknown; map: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: "small" }, leafArb, tie("array"), tie("object"), tie("map")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.dictionary(keyArb, tie("value"), { maxKeys: 5 }),
  map: fc.array(fc.tuple(keyArb, tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
}));

/** Characters likely to turn a valid text into a subtly invalid (or differently valid) one. */
const NASTY = [
  " ",
  "\t",
  "\n",
  "\r",
  ",",
  ":",
  "[",
  "]",
  "{",
  "}",
  '"',
  "\\",
  "-",
  "+",
  "0",
  "1",
  "e",
  "E",
  ".",
  "N",
  "I",
  "u",
  "n",
  "\u00a0",
  "\x00",
  "\x1f",
  "\x0b",
  "\x0c",
  "\ufeff",
  "\ud800",
  "x",
];
const mutationArb = fc.tuple(
  fc.constantFrom("insert", "delete", "replace", "truncate"),
  fc.nat(),
  fc.constantFrom(...NASTY),
);
const mutatedTextArb = fc.tuple(valueArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([v, muts]) => {
  let text = pyJsonDumps(v);
  for (const [kind, at, ch] of muts) {
    const i = text.length === 0 ? 0 : at % (text.length + 1);
    if (kind === "insert") text = text.slice(0, i) + ch + text.slice(i);
    else if (kind === "delete") text = text.slice(0, i) + text.slice(i + 1);
    else if (kind === "replace") text = text.slice(0, i) + ch + text.slice(i + 1);
    else text = text.slice(0, i);
  }
  return text;
});

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

function nestedArrays(depth: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

const DUMPS_TABLE: Array<[unknown, string]> = [
  [null, "null"],
  [true, "true"],
  [false, "false"],
  [0, "0"],
  [-0, "-0.0"],
  [-1, "-1"],
  [1e15, "1000000000000000"], // a safe integer: a Python int
  [Number.MAX_SAFE_INTEGER, "9007199254740991"],
  [-Number.MAX_SAFE_INTEGER, "-9007199254740991"],
  [2 ** 53, "9007199254740992.0"],
  [-(2 ** 53), "-9007199254740992.0"],
  [9999999999999998, "9999999999999998.0"],
  [1e16, "1e+16"],
  [-1e17, "-1e+17"],
  // eslint-disable-next-line no-loss-of-precision -- the literal rounds to the double whose repr is tested
  [123456789012345678, "1.2345678901234568e+17"],
  [1e21, "1e+21"],
  [1e22, "1e+22"],
  [1e300, "1e+300"],
  [1.7976931348623157e308, "1.7976931348623157e+308"],
  [1.5, "1.5"],
  [-0.5, "-0.5"],
  [0.1, "0.1"],
  [0.30000000000000004, "0.30000000000000004"],
  [1e-4, "0.0001"],
  [0.00012345, "0.00012345"],
  [1e-5, "1e-05"],
  [1.2345e-5, "1.2345e-05"],
  [1.5e-7, "1.5e-07"],
  [-1e-7, "-1e-07"],
  [2.5e-100, "2.5e-100"],
  [5e-324, "5e-324"],
  [2.2250738585072014e-308, "2.2250738585072014e-308"],
  [NaN, "NaN"],
  [Infinity, "Infinity"],
  [-Infinity, "-Infinity"],
  [0n, "0"],
  [5n, "5"],
  [2n ** 64n, "18446744073709551616"],
  [-(2n ** 53n) - 1n, "-9007199254740993"],
  ["", '""'],
  ["abc", '"abc"'],
  ['"\\/', '"\\"\\\\/"'],
  ["\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'],
  ["\x00\x1f\x7f\x80", '"\\u0000\\u001f\\u007f\\u0080"'],
  ["é€\uABCD", '"\\u00e9\\u20ac\\uabcd"'],
  ["\u{1f600}", '"\\ud83d\\ude00"'],
  ["\ud800", '"\\ud800"'],
  ["a\udc00\ud800b", '"a\\udc00\\ud800b"'],
  ["\u2028\ufeff", '"\\u2028\\ufeff"'],
  [[], "[]"],
  [{}, "{}"],
  [new Map(), "{}"],
  [[[]], "[[]]"],
  [[1, [2.5, [null, "x"]]], '[1,[2.5,[null,"x"]]]'],
  [{ size: 12 }, '{"size":12}'],
  [{ b: 1, a: 2, size: 3 }, '{"b":1,"a":2,"size":3}'],
  [{ b: 1, 10: 2, a: 3 }, '{"10":2,"b":1,"a":3}'], // Object.keys order
  [
    new Map<string, unknown>([
      ["b", 1],
      ["10", 2],
      ["a", 3],
    ]),
    '{"b":1,"10":2,"a":3}',
  ],
  [{ a: undefined, b: 1, c: undefined }, '{"b":1}'],
  [
    new Map<string, unknown>([
      ["a", undefined],
      ["b", 1],
    ]),
    '{"b":1}',
  ],
  [JSON.parse('{"__proto__":{"x":1},"constructor":null}'), '{"__proto__":{"x":1},"constructor":null}'],
  [Object.assign(Object.create(null) as object, { z: 1, y: [] }), '{"z":1,"y":[]}'],
  [{ "é\n": { "\u{1f600}": "\x01" } }, '{"\\u00e9\\n":{"\\ud83d\\ude00":"\\u0001"}}'],
  [
    { mtime: 1700000000.123, tags: ["a"], big: 2n ** 70n },
    '{"mtime":1700000000.123,"tags":["a"],"big":1180591620717411303424}',
  ],
];

const cyclicArray: unknown[] = [];
cyclicArray.push(cyclicArray);
const cyclicObject: Record<string, unknown> = {};
cyclicObject.self = { again: cyclicObject };
class Point {
  x = 1;
}

const DUMPS_REJECTS: Array<[string, unknown]> = [
  ["undefined", undefined],
  ["undefined in array", [1, undefined]],
  ["sparse array", [1, , 2]], // eslint-disable-line no-sparse-arrays
  ["function", () => 1],
  ["function in object", { f: () => 1 }],
  ["symbol", Symbol("s")],
  ["Uint8Array", new Uint8Array(2)],
  ["Float64Array", new Float64Array(1)],
  ["Date", new Date(0)],
  ["class instance", new Point()],
  ["boxed number", Object(1) as unknown],
  ["object with a non-plain prototype", Object.create({ a: 1 }) as unknown],
  ["Set", new Set([1])],
  ["Map with a number key", new Map([[1, 2]])],
  ["cyclic array", cyclicArray],
  ["cyclic object", cyclicObject],
  ["1001 nested arrays", nestedArrays(1001)],
  ["bigint with 4301 digits (Python's int limit)", 10n ** 4300n],
  [
    "throwing getter",
    Object.defineProperty({}, "x", {
      enumerable: true,
      get: () => {
        throw new TypeError("boom");
      },
    }),
  ],
];

const LOADS_TABLE: Array<[string, unknown]> = [
  ["null", null],
  ["true", true],
  [" \t\n\r false \r\n", false],
  ["0", 0],
  ["-0", 0], // Python int: no negative zero
  ["-0.0", -0],
  ["0.0", 0],
  ["1.0", 1],
  ["-0e0", -0],
  ["1e2", 100],
  ["1E+2", 100],
  ["1e-2", 0.01],
  ["-1.5e+3", -1500],
  ["1e400", Infinity],
  ["-1e400", -Infinity],
  ["1e-400", 0],
  ["0.1", 0.1],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
  ["123456789012345", 123456789012345],
  ["1234567890123456", 1234567890123456],
  ["9007199254740991", Number.MAX_SAFE_INTEGER],
  ["-9007199254740991", -Number.MAX_SAFE_INTEGER],
  ["9007199254740992", 9007199254740992n],
  ["-9007199254740993", -9007199254740993n],
  ["123456789012345678901234567890", 123456789012345678901234567890n],
  ["9".repeat(4300), 10n ** 4300n - 1n],
  ['""', ""],
  ['"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\/\b\f\n\r\t'],
  ['"\\u00e9\\u00E9\\uABcd"', "éé\uabcd"],
  ['"\\ud83d\\ude00"', "\u{1f600}"],
  ['"\\ud800"', "\ud800"],
  ['"\\udc00\\ud800x"', "\udc00\ud800x"],
  ['"\\ud800\\u0041"', "\ud800A"],
  ['"é\u{1f600}\x7f\u2028"', "é\u{1f600}\x7f\u2028"],
  ['"\ud800"', "\ud800"], // a raw lone surrogate in a str is fine for Python
  ["[]", []],
  ["{}", {}],
  ["[ ]", []],
  ["{ }", {}],
  ['{"size":12}', { size: 12 }],
  ['{"b":1,"a":2}', { b: 1, a: 2 }],
  ['{"a":1,"b":2,"a":3}', { a: 3, b: 2 }],
  ['{"a":1,"a":{"x":[]}}', { a: { x: [] } }],
  ['{"b":1,"1":2}', { 1: 2, b: 1 }], // JS objects put integer-like keys first
  ['{ "a" : 1 ,\n"b" :\t[ 1 , 2.5 ] }', { a: 1, b: [1, 2.5] }],
  ['[1,[2,{"a":[],"b":{}}],"x",null]', [1, [2, { a: [], b: {} }], "x", null]],
];

const MALFORMED: string[] = [
  "",
  " ",
  "\ufeff{}",
  "\ufeff",
  "{",
  "[",
  "[1,",
  "[1,]",
  "[,]",
  "[1 2]",
  '{"a"',
  '{"a":',
  '{"a":1,}',
  '{"a" 1}',
  '{"a":1 "b":2}',
  "{,}",
  "{a:1}",
  "{'a':1}",
  "{1:2}",
  "'a'",
  '"abc',
  '"\\',
  '"\\x"',
  '"\\u12"',
  '"\\u12G4"',
  '"\\ud800\\uZZZZ"',
  '"a\nb"',
  '"\x00"',
  '"\x1f"',
  "nul",
  "nulll",
  "tru",
  "True",
  "None",
  "nan",
  "inf",
  "-NaN",
  "+1",
  "01",
  "-01",
  "-",
  "-a",
  "1.",
  ".5",
  "1e",
  "1e+",
  "1.e5",
  "0x10",
  "1_000",
  "1 2",
  "[] []",
  "{}x",
  "\u00a01",
  "\f1",
  "1\v",
  "1".repeat(4301),
  "-" + "1".repeat(4301),
];

const DEEP_TEXTS: Array<[string, string]> = [
  ["100000 [", "[".repeat(100000)],
  ["100000 balanced []", "[".repeat(100000) + "]".repeat(100000)],
  ['100000 {"a":', '{"a":'.repeat(100000)],
  ["1001 nested arrays", "[".repeat(1001) + "]".repeat(1001)],
  ["1001 nested objects", '{"a":'.repeat(1000) + "{}" + "}".repeat(1000)],
];

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("pyJsonDumps", () => {
  it.each(DUMPS_TABLE.map(([v, text]) => [show(v), v, text] as const))("encodes %s", (_name, v, text) => {
    expect(pyJsonDumps(v)).toBe(text);
  });

  it("accepts 1000 nesting levels and the largest int Python prints", () => {
    expect(pyJsonDumps(nestedArrays(1000))).toBe("[".repeat(1000) + "]".repeat(1000));
    expect(pyJsonDumps(10n ** 4300n - 1n)).toBe("9".repeat(4300));
    const shared = { a: 1 };
    expect(pyJsonDumps([shared, shared])).toBe('[{"a":1},{"a":1}]'); // shared is not cyclic
  });

  it.each(DUMPS_REJECTS)("rejects %s with DesInvalidArgumentError", (_name, v) => {
    expect(errorOf(() => pyJsonDumps(v))).toBeInstanceOf(DesInvalidArgumentError);
  });

  it("round-trips through pyJsonLoads to what Python would read back", () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        expect(tag(pyJsonLoads(pyJsonDumps(v)))).toEqual(jsView(tag(v)));
      }),
      { numRuns: 500, seed: 7 },
    );
  });
});

describe("pyJsonLoads", () => {
  it.each(LOADS_TABLE.map(([text, v]) => [JSON.stringify(text).slice(0, 60), text, v] as const))(
    "decodes %s",
    (_name, text, v) => {
      expect(show(pyJsonLoads(text))).toBe(show(v));
      // Lone surrogates have no UTF-8 form; everything else must read the same from bytes.
      if (!LONE_SURROGATE.test(text)) expect(show(pyJsonLoads(new TextEncoder().encode(text)))).toBe(show(v));
    },
  );

  it("makes __proto__ and friends ordinary own properties without touching prototypes", () => {
    const v = pyJsonLoads('{"__proto__":{"polluted":1},"constructor":2,"toString":3,"__proto__":{"x":[]}}') as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(["__proto__", "constructor", "toString"]);
    expect(Object.getOwnPropertyDescriptor(v, "__proto__")?.value).toEqual({ x: [] });
    expect(v.constructor).toBe(2);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(pyJsonDumps(v)).toBe('{"__proto__":{"x":[]},"constructor":2,"toString":3}');
  });

  it("accepts exactly 1000 nesting levels", () => {
    expect(show(pyJsonLoads("[".repeat(1000) + "]".repeat(1000)))).toBe(show(nestedArrays(1000)));
    const objects = pyJsonLoads('{"a":'.repeat(999) + "{}" + "}".repeat(999));
    expect(pyJsonDumps(objects)).toBe('{"a":'.repeat(999) + "{}" + "}".repeat(999));
  });

  it("decodes UTF-8 bytes and rejects invalid UTF-8 and a BOM", () => {
    expect(pyJsonLoads(new TextEncoder().encode('{"é":"\u{1f600}"}'))).toEqual({ é: "\u{1f600}" });
    const bad: number[][] = [
      [0x22, 0xff, 0x22],
      [0x22, 0xc0, 0xaf, 0x22], // overlong "/"
      [0x22, 0xed, 0xa0, 0x80, 0x22], // UTF-8 encoded surrogate
      [0x22, 0xe2, 0x82, 0x22], // truncated sequence
      [0xef, 0xbb, 0xbf, 0x7b, 0x7d], // BOM + {}
      [],
    ];
    for (const bytes of bad) {
      expect(errorOf(() => pyJsonLoads(new Uint8Array(bytes)))).toBeInstanceOf(DesFormatError);
    }
  });

  it("rejects input that is neither a string nor a Uint8Array with DesInvalidArgumentError", () => {
    for (const bad of [42, null, undefined, [1], new Uint16Array(2)]) {
      expect(errorOf(() => pyJsonLoads(bad as unknown as string))).toBeInstanceOf(DesInvalidArgumentError);
    }
  });

  it.each(MALFORMED.map((t) => [JSON.stringify(t).slice(0, 40), t] as const))("rejects %s", (_name, text) => {
    expect(errorOf(() => pyJsonLoads(text))).toBeInstanceOf(DesFormatError);
  });

  it.each(DEEP_TEXTS)("rejects %s quickly", (_name, text) => {
    const t0 = performance.now();
    expect(errorOf(() => pyJsonLoads(text))).toBeInstanceOf(DesFormatError);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it("throws nothing but DesFormatError on arbitrary input", () => {
    const assertOnlyFormatErrors = (input: string | Uint8Array): void => {
      const err = errorOf(() => pyJsonLoads(input));
      if (err !== undefined) expect(err).toBeInstanceOf(DesFormatError);
    };
    fc.assert(fc.property(fc.string({ unit: anyCodeUnit, maxLength: 40 }), assertOnlyFormatErrors), {
      numRuns: 1000,
      seed: 1,
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), assertOnlyFormatErrors), { numRuns: 1000, seed: 2 });
    fc.assert(fc.property(mutatedTextArb, assertOnlyFormatErrors), { numRuns: 1000, seed: 3 });
  });

  it("parses small meta objects in a few microseconds", () => {
    const text = '{"size":12345,"name":"some/file/name.txt","mtime":1700000000.123,"tags":["a","b"]}';
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < 20000; i++) pyJsonLoads(bytes); // warm up
    const n = 50000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) pyJsonLoads(bytes);
    const microsPerParse = ((performance.now() - t0) * 1000) / n;
    expect(microsPerParse).toBeLessThan(20); // ~1 us locally; generous for slow CI machines
  });
});

describe("cross-check with the real python3", () => {
  const DUMPS_SAMPLES = 3000;
  const MUTATED_SAMPLES = 2000;
  const GENERATED = 2500;

  let dumpsValues: unknown[];
  let mutatedTexts: string[];
  let answers: PyResponse[];
  let offsets: { dumps: number; mutated: number; table: number; malformed: number; gen: number };

  beforeAll(() => {
    dumpsValues = fc.sample(valueArb, { numRuns: DUMPS_SAMPLES, seed: 0x5eed });
    mutatedTexts = fc.sample(mutatedTextArb, { numRuns: MUTATED_SAMPLES, seed: 0xbad });
    const requests: PyRequest[] = [];
    const mark = (): number => requests.length;
    const dumps = mark();
    for (const v of dumpsValues) requests.push({ op: "dumps", v: tag(v) });
    const mutated = mark();
    for (const text of mutatedTexts) requests.push({ op: "loads", text: toUnits(text) });
    const table = mark();
    for (const [text] of LOADS_TABLE) requests.push({ op: "loads", text: toUnits(text) });
    const malformed = mark();
    for (const text of MALFORMED) requests.push({ op: "loads", text: toUnits(text) });
    const gen = mark();
    requests.push({ op: "gen", seed: 20240607, count: GENERATED });
    offsets = { dumps, mutated, table, malformed, gen };
    answers = runPython(requests);
  }, 30_000);

  const answer = (i: number): PyResponse => answers[i] as PyResponse;

  it("pyJsonDumps matches json.dumps(v, separators=(',', ':')) byte for byte", () => {
    const mismatches: string[] = [];
    dumpsValues.forEach((v, i) => {
      const py = answer(offsets.dumps + i);
      const ours = pyJsonDumps(v);
      if (!("ok" in py) || py.ok !== ours) {
        mismatches.push(`${JSON.stringify(tag(v))}: python ${JSON.stringify(py)} ours ${ours}`);
      }
    });
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it("pyJsonLoads reads Python-generated texts (str and UTF-8 bytes) to the same values", () => {
    const py = answer(offsets.gen);
    if (!("ok" in py)) throw new Error(`python gen failed: ${py.error}`);
    const cases = py.ok as Array<{ text: number[]; utf8: string | null; view: Tagged }>;
    expect(cases.length).toBe(GENERATED);
    const mismatches: string[] = [];
    let bytesCases = 0;
    for (const c of cases) {
      const text = fromUnits(c.text);
      const expected = jsView(c.view);
      const fromStr = tag(pyJsonLoads(text));
      if (JSON.stringify(fromStr) !== JSON.stringify(expected)) mismatches.push(`str ${JSON.stringify(text)}`);
      if (c.utf8 !== null) {
        bytesCases++;
        const fromBytes = tag(pyJsonLoads(new Uint8Array(Buffer.from(c.utf8, "base64"))));
        if (JSON.stringify(fromBytes) !== JSON.stringify(expected)) mismatches.push(`bytes ${JSON.stringify(text)}`);
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(bytesCases).toBeGreaterThan(GENERATED / 2);
  });

  it("pyJsonLoads accepts and rejects mutated texts exactly like json.loads", () => {
    const mismatches: string[] = [];
    let accepted = 0;
    mutatedTexts.forEach((text, i) => {
      const py = answer(offsets.mutated + i);
      const verdict = compareLoads(text, py);
      if (verdict === "accepted") accepted++;
      else if (verdict !== "rejected") mismatches.push(verdict);
    });
    expect(mismatches.slice(0, 5)).toEqual([]);
    // The mutations must exercise both outcomes to mean anything.
    expect(accepted).toBeGreaterThan(MUTATED_SAMPLES / 10);
    expect(accepted).toBeLessThan(MUTATED_SAMPLES * 0.9);
  });

  it("Python agrees with the decoding table", () => {
    LOADS_TABLE.forEach(([text], i) => {
      expect(compareLoads(text, answer(offsets.table + i))).toBe("accepted");
    });
  });

  it("Python also rejects every malformed text", () => {
    const acceptedByPython = MALFORMED.filter((_t, i) => "ok" in answer(offsets.malformed + i));
    expect(acceptedByPython).toEqual([]);
  });
});

/** "accepted" / "rejected" when both sides agree, else a description of the disagreement. */
function compareLoads(text: string, py: PyResponse): string {
  let ours: Tagged | DesFormatError;
  try {
    ours = tag(pyJsonLoads(text));
  } catch (err) {
    if (!(err instanceof DesFormatError)) return `${JSON.stringify(text)}: threw ${String(err)}`;
    ours = err;
  }
  if ("error" in py) {
    return ours instanceof DesFormatError ? "rejected" : `${JSON.stringify(text)}: python ${py.error}, ours accepted`;
  }
  if (ours instanceof DesFormatError) return `${JSON.stringify(text)}: python accepted, ours ${ours.message}`;
  const expected = jsView(py.ok as Tagged);
  return JSON.stringify(ours) === JSON.stringify(expected)
    ? "accepted"
    : `${JSON.stringify(text)}: python ${JSON.stringify(expected)} ours ${JSON.stringify(ours)}`;
}
