/**
 * A store writer in its own process, for crash and multi-node tests.
 * argv: <folder | s3|endpoint|bucket|prefix|spool> <nodeId> <count> <concurrency> <maxEntries> [close]
 * Prints "<name> <k>" on stdout for every put that resolved (synchronously,
 * so a kill loses nothing printed), "ready" once open and "done" at the end.
 */
import fs from "node:fs";
import { S3Client } from "@aws-sdk/client-s3";
import { DailyShardedDesStore } from "../../src/index.js";
import type { DailyStoreOptions } from "../../src/index.js";
import { S3Location } from "../../src/s3/index.js";
import { s3Config } from "./moto.js";
import { blobFor } from "./store-data.js";

/**
 * Writes a line to stdout synchronously. stdout is a pipe that may be
 * non-blocking: when the parent is slow to read (a busy machine) a write
 * fails with EAGAIN, and is tried again after a millisecond.
 */
const pause = new Int32Array(new SharedArrayBuffer(4));
function say(line: string): void {
  let bytes = Buffer.from(line);
  while (bytes.length > 0) {
    try {
      bytes = bytes.subarray(fs.writeSync(1, bytes));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

const [dir, node, count, conc, maxEntries, close] = process.argv.slice(2);
let where: Pick<DailyStoreOptions, "location" | "spoolDir"> = { location: dir! };
if (dir!.startsWith("s3|")) {
  const [, endpoint, bucket, prefix, spoolDir] = dir!.split("|");
  where = {
    location: new S3Location({ client: new S3Client(s3Config(endpoint!)), bucket: bucket!, prefix: prefix! }),
    spoolDir: spoolDir!,
  };
}
const store = await DailyShardedDesStore.open({
  ...where,
  nodeId: Number(node),
  shardBits: 4,
  maxEntries: Number(maxEntries),
  maxAgeMs: 200,
});
say("ready\n");
const total = Number(count);
let next = 0;
await Promise.all(
  Array.from({ length: Number(conc) }, async () => {
    while (next < total) {
      const k = Number(node) * 1_000_000 + next++;
      const name = await store.put(blobFor(k), { meta: { k } });
      say(`${name} ${k}\n`);
    }
  }),
);
if (close === "close") await store.close();
say("done\n");
process.exit(0);
