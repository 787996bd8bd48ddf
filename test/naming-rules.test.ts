import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DesInvalidArgumentError,
  DesNameError,
  SnowflakeNameGenerator,
  assignShards,
  consistentHash,
  formatName,
  parseName,
  shardFromName,
  shardOwner,
} from "../src/index.js";
import type { NameParts } from "../src/index.js";
import { nameChecksum, nameTail } from "../src/naming/name.js";

const T = Date.UTC(2025, 0, 15, 12, 0, 0);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("SnowflakeNameGenerator rules", () => {
  it("validates prefix, nodeId, wrapBits and time zone with typed errors", () => {
    for (const prefix of ["", "a_b", "ä", "x-y", " DES"]) {
      expect(() => new SnowflakeNameGenerator({ nodeId: 0, prefix })).toThrow(DesInvalidArgumentError);
    }
    for (const nodeId of [-1, 256, 1.5, Number.NaN])
      expect(code(() => new SnowflakeNameGenerator({ nodeId }))).toBe("DES_INVALID_ARGUMENT");
    for (const wrapBits of [0, 33, 2.5])
      expect(code(() => new SnowflakeNameGenerator({ nodeId: 0, wrapBits }))).toBe("DES_INVALID_ARGUMENT");
    expect(code(() => new SnowflakeNameGenerator({ nodeId: 0, timeZone: "Mars/Olympus" }))).toBe(
      "DES_INVALID_ARGUMENT",
    );
    const g = new SnowflakeNameGenerator({ nodeId: 7, prefix: "Ab9" });
    expect(g.wrapBits).toBe(32);
    expect(g.prefix).toBe("Ab9");
  });

  it("pins a clock that goes backwards to the last millisecond", async () => {
    let now = T + 100;
    const g = new SnowflakeNameGenerator({ nodeId: 3, clock: () => now });
    const a = parseName(await g.next());
    now = T + 50;
    const b = parseName(await g.next());
    const c = parseName(await g.next());
    expect([a.seq, b.seq, c.seq]).toEqual([0, 1, 2]);
    expect(new Set([a.timestampBits, b.timestampBits, c.timestampBits])).toEqual(new Set([(T + 100) % 2 ** 32]));
    now = T + 101;
    const d = parseName(await g.next());
    expect([d.timestampBits, d.seq]).toEqual([(T + 101) % 2 ** 32, 0]);
  });

  it("waits for the next millisecond after 256 names, without blocking the event loop, and restarts at seq 0", async () => {
    let now = T;
    const g = new SnowflakeNameGenerator({ nodeId: 1, clock: () => now });
    const names = await Promise.all(Array.from({ length: 256 }, () => g.next()));
    expect(names.map((n) => parseName(n).seq)).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(g.tryNext()).toBeUndefined();
    let settled = false;
    const p257 = g.next().then((n) => ((settled = true), n));
    const p258 = g.next();
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 2));
      ticks++;
    }
    expect(ticks).toBe(5);
    expect(settled).toBe(false);
    now = T + 1;
    const [n257, n258] = [parseName(await p257), parseName(await p258)];
    expect([n257.timestampBits, n257.seq, n258.seq]).toEqual([(T + 1) % 2 ** 32, 0, 1]);
    expect(new Set([...names, await p257, await p258]).size).toBe(258);
  });

  it("takes the low bits of negative and huge clocks, as Python's &", async () => {
    const cases: [number, number, number][] = [
      [-1, 32, 2 ** 32 - 1],
      [-1, 10, 1023],
      [-1025, 10, 1023],
      [2 ** 40 + 5, 32, 5],
      [2 ** 60, 16, 0],
      [2 ** 60 + 2 ** 20, 32, 2 ** 20],
    ];
    for (const [ms, w, want] of cases) {
      const g = new SnowflakeNameGenerator({ nodeId: 0, wrapBits: w, clock: () => ms });
      expect(parseName(await g.next({ day: "2025-01-15" })).timestampBits).toBe(want);
    }
    const bad = new SnowflakeNameGenerator({ nodeId: 0, clock: () => Number.NaN });
    await expect(bad.next()).rejects.toBeInstanceOf(DesInvalidArgumentError);
  });

  it("uses the UTC day by default, or a time zone, or a day function, or a per-call day", async () => {
    const late = Date.UTC(2025, 0, 15, 23, 30); // 00:30 on the 16th in Warsaw
    const utc = new SnowflakeNameGenerator({ nodeId: 0, clock: () => late });
    expect(parseName(await utc.next()).day).toBe("2025-01-15");
    const waw = new SnowflakeNameGenerator({ nodeId: 0, clock: () => late, timeZone: "Europe/Warsaw" });
    expect(parseName(await waw.next()).day).toBe("2025-01-16");
    const ny = new SnowflakeNameGenerator({
      nodeId: 0,
      clock: () => Date.UTC(2025, 0, 16, 2),
      timeZone: "America/New_York",
    });
    expect(parseName(await ny.next()).day).toBe("2025-01-15");
    const fn = new SnowflakeNameGenerator({ nodeId: 0, clock: () => late, day: () => "2030-02-28" });
    expect(parseName(await fn.next()).day).toBe("2030-02-28");
    expect(parseName(await utc.next({ day: new Date(Date.UTC(2024, 1, 29, 5)) })).day).toBe("2024-02-29");
    expect(parseName(await utc.next({ day: "1999-12-31" })).day).toBe("1999-12-31");
    await expect(utc.next({ day: "2025-02-29" })).rejects.toBeInstanceOf(DesInvalidArgumentError);
    await expect(utc.next({ day: "20250115" })).rejects.toBeInstanceOf(DesInvalidArgumentError);
  });

  it("continues after an earlier generator's last name", async () => {
    const g = new SnowflakeNameGenerator({ nodeId: 0, clock: () => T - 10, after: { ms: T, seq: 7 } });
    const p = parseName(await g.next());
    expect([p.timestampBits, p.seq]).toEqual([T % 2 ** 32, 8]);
  });

  it("never repeats a name in 20,000 draws on a real clock", async () => {
    const g = new SnowflakeNameGenerator({ nodeId: 9 });
    const names = await Promise.all(Array.from({ length: 20_000 }, () => g.next()));
    expect(new Set(names).size).toBe(20_000);
    const fs = names.map((n) => parseName(n).f);
    expect(fs.every((f, i) => i === 0 || f > fs[i - 1]!)).toBe(true);
  });
});

describe("parseName", () => {
  it("gives every part, F and the timestamp bits", () => {
    expect(parseName("DES_20250115_(69D5B27BFF00_6A)")).toEqual({
      prefix: "DES",
      day: "2025-01-15",
      f: 0x69d5b27bff00,
      timestampBits: 0x69d5b27b,
      nodeId: 255,
      seq: 0,
    });
  });

  it("refuses a wrong checksum byte and malformed text with typed errors", () => {
    const bad = (name: string): DesNameError => {
      try {
        parseName(name);
      } catch (e) {
        expect(e).toBeInstanceOf(DesNameError);
        expect((e as DesNameError).code).toBe("DES_INVALID_ARGUMENT");
        return e as DesNameError;
      }
      throw new Error(`accepted ${name}`);
    };
    expect(bad("DES_20250115_(69D5B27BFF00_6B)").problem).toBe("checksum");
    for (const m of [
      "",
      "DES_20250115_(69d5b27bff00_6A)",
      "DES_20250115_(69D5B27BFF0_6A)",
      "DES_20251315_(69D5B27BFF00_6A)",
      "DES_20250230_(69D5B27BFF00_6A)",
      "_20250115_(69D5B27BFF00_6A)",
      "D-S_20250115_(69D5B27BFF00_6A)",
      "DES_20250115_69D5B27BFF00_6A",
      "DES_20250115_(69D5B27BFF00_6A) ",
      "x".repeat(100_000),
    ]) {
      expect(bad(m).problem).toBe("malformed");
    }
  });

  it("parseName(formatName(x)) = x and formatName(parseName(n)) = n (property, bounded)", () => {
    const day = fc
      .date({ min: new Date(Date.UTC(0, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10));
    const parts: fc.Arbitrary<NameParts> = fc.record({
      prefix: fc.stringMatching(/^[A-Za-z0-9]{1,12}$/),
      day,
      timestampBits: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      nodeId: fc.integer({ min: 0, max: 255 }),
      seq: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(parts, (x) => {
        const name = formatName(x);
        const p = parseName(name);
        expect(p).toEqual({ ...x, f: x.timestampBits * 65536 + x.nodeId * 256 + x.seq });
        expect(formatName(p)).toBe(name);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });
});

describe("shard hashing", () => {
  it("refuses lone surrogates and bad bit counts", () => {
    expect(code(() => consistentHash("a\ud800b", 8))).toBe("DES_INVALID_ARGUMENT");
    expect(code(() => shardFromName("\udc00", 8))).toBe("DES_INVALID_ARGUMENT");
    expect(consistentHash("\ud83d\ude00", 8)).toBe(shardFromName("😀", 8));
    for (const b of [0, 257, 1.5]) expect(code(() => consistentHash("a", b))).toBe("DES_INVALID_ARGUMENT");
    for (const b of [0, 33]) expect(code(() => shardFromName("a", b))).toBe("DES_INVALID_ARGUMENT");
    expect(typeof consistentHash("a", 32)).toBe("number");
    expect(typeof consistentHash("a", 64)).toBe("bigint");
  });
});

describe("assignShards", () => {
  it("modulo is Python's shard % nodes", () => {
    expect(assignShards(4, 3, { strategy: "modulo" })).toEqual(Array.from({ length: 16 }, (_, s) => s % 3));
    expect(shardOwner(10, 4, { strategy: "modulo" })).toBe(2);
  });

  it("rendezvous: growing N to N+1 nodes moves about 1/(N+1) of the shards, all to the new node, and stays balanced", () => {
    const bits = 12;
    const shards = 2 ** bits;
    for (const n of [1, 2, 3, 5, 8, 16]) {
      const before = assignShards(bits, n);
      const after = assignShards(bits, n + 1);
      let moved = 0;
      for (let s = 0; s < shards; s++) {
        if (before[s] !== after[s]) {
          moved++;
          expect(after[s]).toBe(n);
        }
      }
      const expected = shards / (n + 1);
      expect(Math.abs(moved - expected)).toBeLessThan(expected * 0.15);
      const counts = new Array<number>(n + 1).fill(0);
      for (const o of after) counts[o]!++;
      for (const c of counts) expect(Math.abs(c - expected)).toBeLessThan(expected * 0.2);
      for (let s = 0; s < shards; s += 97) expect(shardOwner(s, n + 1)).toBe(after[s]);
    }
    // named nodes: removing one moves only its shards
    const four = assignShards(10, ["a", "b", "c", "d"]);
    const three = assignShards(10, ["a", "b", "d"]);
    const map3 = ["a", "b", "d"];
    const map4 = ["a", "b", "c", "d"];
    for (let s = 0; s < 1024; s++) if (map4[four[s]!] !== "c") expect(map3[three[s]!]).toBe(map4[four[s]!]);
    // modulo, by contrast, moves most shards
    const m3 = assignShards(bits, 3, { strategy: "modulo" });
    const m4 = assignShards(bits, 4, { strategy: "modulo" });
    expect(m3.filter((o, s) => o !== m4[s]).length).toBeGreaterThan(shards / 2);
  });
});

describe("the generator's name formatting (head per day, tail from a byte table)", () => {
  it("gives exactly formatName's text for random clocks, nodes, prefixes, wrap bits and days", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 40), max: 2 ** 45 }),
        fc.integer({ min: 0, max: 255 }),
        fc.stringMatching(/^[A-Za-z0-9]{1,8}$/),
        fc.integer({ min: 1, max: 32 }),
        fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }),
        (clock, nodeId, prefix, wrapBits, date) => {
          const gen = new SnowflakeNameGenerator({ nodeId, prefix, wrapBits, clock: () => clock });
          const name = gen.tryNext({ day: date })!;
          const p = parseName(name);
          expect(name).toBe(formatName({ prefix, day: p.day, timestampBits: p.timestampBits, nodeId, seq: p.seq }));
          expect(p.nodeId).toBe(nodeId);
          expect(p.seq).toBe(0);
          expect(p.day).toBe(date.toISOString().slice(0, 10));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("nameTail covers the extremes of F and of its checksum byte", () => {
    for (const f of [0, 1, 255, 256, 2 ** 24 - 1, 2 ** 24, 2 ** 47, 2 ** 48 - 1, 0xfedcba987654])
      expect(nameTail(f)).toBe(
        `${f.toString(16).toUpperCase().padStart(12, "0")}_${nameChecksum(f).toString(16).toUpperCase().padStart(2, "0")})`,
      );
  });
});
