/**
 * A store writer in its own process, for crash and multi-node tests.
 * argv: <folder> <nodeId> <count> <concurrency> <maxEntries> [close]
 * Prints "<name> <k>" on stdout for every put that resolved (synchronously,
 * so a kill loses nothing printed), "ready" once open and "done" at the end.
 */
import fs from "node:fs";
import { DailyShardedDesStore } from "../../src/index.js";
import { blobFor } from "./store-data.js";

const [dir, node, count, conc, maxEntries, close] = process.argv.slice(2);
const store = await DailyShardedDesStore.open({ location: dir!, nodeId: Number(node), shardBits: 4, maxEntries: Number(maxEntries), maxAgeMs: 200 });
fs.writeSync(1, "ready\n");
const total = Number(count);
let next = 0;
await Promise.all(
  Array.from({ length: Number(conc) }, async () => {
    while (next < total) {
      const k = Number(node) * 1_000_000 + next++;
      const name = await store.put(blobFor(k), { meta: { k } });
      fs.writeSync(1, `${name} ${k}\n`);
    }
  }),
);
if (close === "close") await store.close();
fs.writeSync(1, "done\n");
process.exit(0);
