import { DesError } from "../errors.js";
import { CliError } from "./output.js";

/** Library words users never typed, in the flags they do type. */
export function userWords(message: string): string {
  return message
    .replace(/\bexternalStore\b/g, "--external-dir")
    .replace(/\bbigFileThreshold\b/g, "--big-file-threshold")
    .replace(/\boverwrite: true\b/g, "--overwrite")
    .replace(/\bstream\(\)/g, "cat");
}

/** One line on stderr (the stack only with --debug) and the exit code. */
export function reportFailure(e: unknown, debug: boolean): void {
  if (debug) process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  if (e instanceof CliError) {
    process.stderr.write(`des-pack: ${userWords(e.message)}\n`);
    process.exitCode = e.exitCode;
  } else if (e instanceof DesError) {
    process.stderr.write(`des-pack: ${userWords(e.message)} (${e.code})\n`);
    process.exitCode = 1;
  } else {
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(
      `des-pack: ${err.message ?? String(e)}${debug ? "" : err.code ? "" : " (run with --debug for details)"}\n`,
    );
    process.exitCode = 1;
  }
}
