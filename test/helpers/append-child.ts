/**
 * Child process of the append crash tests: appends `applyChanges` to the
 * archive in argv[2] and kills itself with SIGKILL at the argv[4]-th time the
 * append reaches step argv[3] ("never" runs to the end).
 */
import { DesWriter } from "../../src/index.js";
import { setAppendProbe } from "../../src/write/append-file.js";
import { applyChanges } from "./append-plan.js";

const [archive, step, nth] = process.argv.slice(2);
let seen = 0;
setAppendProbe((s) => {
  if (s === step && ++seen === Number(nth)) process.kill(process.pid, "SIGKILL");
});
const w = await DesWriter.append(archive!);
await applyChanges(w);
if (step === "before-close") process.kill(process.pid, "SIGKILL");
await w.close();
process.stdout.write("done\n");
