import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SnowflakeNameGenerator, consistentHash, parseName, shardFromName } from "../src/index.js";
import { V1_VECTORS } from "./helpers/vectors.js";

interface SnowVector {
  epoch_ms: number;
  node_id: number;
  wrap_bits: number;
  prefix: string;
  day: string;
  names_seq_0_1_2: string[];
}
interface ShardVector {
  value: string;
  sha256: string;
  consistent_hash: Record<string, number>;
  shard_from_name: Record<string, number>;
  marker_des_shard: number;
}

const snowPath = path.join(V1_VECTORS, "snowflake_vectors.json");
const shardPath = path.join(V1_VECTORS, "shard_vectors.json");
const have = fs.existsSync(snowPath) && fs.existsSync(shardPath);

describe.skipIf(!have)("Python vectors", () => {
  const snow = have ? (JSON.parse(fs.readFileSync(snowPath, "utf8")) as { vectors: SnowVector[] }).vectors : [];
  const shard = have ? (JSON.parse(fs.readFileSync(shardPath, "utf8")) as { vectors: ShardVector[] }).vectors : [];

  it("has the vectors it expects", () => {
    expect(snow.length).toBe(27);
    expect(shard.length).toBe(26);
  });

  it("mints every Snowflake vector name, seq 0, 1, 2, for the same clock, node, prefix, wrap bits and day", async () => {
    for (const v of snow) {
      const gen = new SnowflakeNameGenerator({
        nodeId: v.node_id,
        prefix: v.prefix,
        wrapBits: v.wrap_bits,
        clock: () => v.epoch_ms,
      });
      const got = [await gen.next({ day: v.day }), await gen.next({ day: v.day }), await gen.next({ day: v.day })];
      expect(got).toEqual(v.names_seq_0_1_2);
      // the day from the clock (UTC) matches too when the clock is on that day
      if (v.epoch_ms > 0) {
        const g2 = new SnowflakeNameGenerator({
          nodeId: v.node_id,
          prefix: v.prefix,
          wrapBits: v.wrap_bits,
          clock: () => v.epoch_ms,
        });
        expect(await g2.next()).toBe(v.names_seq_0_1_2[0]);
      }
      for (const [i, name] of v.names_seq_0_1_2.entries()) {
        const p = parseName(name);
        expect(p).toMatchObject({ prefix: v.prefix, day: v.day, nodeId: v.node_id, seq: i });
        expect(p.timestampBits).toBe(v.epoch_ms % 2 ** v.wrap_bits);
      }
    }
  });

  it("matches every consistent_hash and shard_from_name value", () => {
    let checked = 0;
    for (const v of shard) {
      for (const [bits, want] of Object.entries(v.consistent_hash)) {
        expect(consistentHash(v.value, Number(bits))).toBe(want);
        checked++;
      }
      for (const [bits, want] of Object.entries(v.shard_from_name)) {
        expect(shardFromName(v.value, Number(bits))).toBe(want);
        checked++;
      }
      expect(shardFromName(v.value, 8)).toBe(v.marker_des_shard);
      expect(consistentHash(v.value, 256)).toBe(BigInt(`0x${v.sha256}`));
      expect(consistentHash(v.value, 33)).toBe(BigInt(`0x${v.sha256}`) >> 223n);
    }
    expect(checked).toBe(26 * 12);
  });
});
