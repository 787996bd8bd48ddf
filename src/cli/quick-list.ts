import { listCommand } from "./commands/read.js";
import { reportFailure } from "./fail.js";
import { quietOnEpipe } from "./output.js";

/** The listing of `des-pack ls <archive> [names...]` without the argument parser (see quick-list-args.ts). */
export async function runPlainList(argv: readonly string[]): Promise<void> {
  quietOnEpipe();
  try {
    process.exitCode = await listCommand(argv[1]!, argv.slice(2), { long: false, json: false, sort: false });
  } catch (e) {
    reportFailure(e, false);
  }
}
