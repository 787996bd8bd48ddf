import fs from "node:fs";
import { DesReader } from "../read/reader.js";
import { reportFailure } from "./fail.js";
import { CliError, Out, escapeName, quietOnEpipe, writeStdout } from "./output.js";

/**
 * Lines written straight to file descriptor 1 with synchronous writes, which
 * block while a pipe is full (the backpressure) and need no stream: creating
 * `process.stdout` for a pipe loads the net and stream machinery, a few
 * milliseconds before the first line. Where the descriptor refuses a blocking
 * write (EAGAIN: it was handed over non-blocking), the rest goes through
 * `process.stdout` as before. A reader that went away (EPIPE) ends the
 * process quietly.
 */
class FdOut {
  private buf: string[] = [];
  private bytes = 0;
  private stream: Out | undefined;

  line(s: string): void | Promise<void> {
    if (this.stream) return this.stream.line(s);
    this.buf.push(s, "\n");
    this.bytes += s.length + 1;
    if (this.bytes >= 64 << 10) return this.flush();
  }

  async flush(): Promise<void> {
    if (this.stream) return this.stream.flush();
    if (this.buf.length === 0) return;
    const bytes = Buffer.from(this.buf.join(""), "utf8");
    this.buf = [];
    this.bytes = 0;
    let at = 0;
    try {
      while (at < bytes.length) {
        at += fs.writeSync(1, bytes, at, bytes.length - at);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EPIPE") process.exit(process.exitCode ?? 0);
      if (code !== "EAGAIN") throw e;
      quietOnEpipe();
      this.stream = new Out();
      await writeStdout(bytes.subarray(at));
    }
  }
}

/** `ls` arguments that name a local file (not `-`, `s3://` or a URL): those open the file reader directly. */
function isLocalPath(spec: string): boolean {
  return spec !== "-" && !/^s3:/i.test(spec) && !/^https?:\/\//i.test(spec);
}

/**
 * Lists a local archive with no more code loaded than the reader itself:
 * no argument parser, no Location layer, no writer, and the glob matcher
 * only when names were given. Names go out as the first page is decoded.
 */
async function listLocal(file: string, patterns: readonly string[]): Promise<number> {
  const st = await fs.promises.stat(file).catch(() => undefined);
  if (!st) throw new CliError(`${file}: no such archive`);
  if (!st.isFile()) throw new CliError(`${file}: not a regular file`);
  const sel = patterns.length > 0 ? (await import("./select.js")).trackingSelector(patterns) : undefined;
  // Each page is read once: a small page cache keeps memory flat whatever the archive's size.
  const reader = await DesReader.open(file, { pageCacheBytes: 4 << 20 });
  const out = new FdOut();
  try {
    let first = true;
    for await (const e of reader.entries()) {
      if (sel && !sel.test(e.name)) continue;
      const w = out.line(escapeName(e.name));
      if (w) await w;
      // The first name goes out at once; then in 64 KiB writes.
      if (first) await out.flush();
      first = false;
    }
    await out.flush();
    sel?.requireAllMatched();
    return 0;
  } finally {
    await reader.close();
  }
}

/** The listing of `des-pack ls <archive> [names...]` without the argument parser (see quick-list-args.ts). */
export async function runPlainList(argv: readonly string[]): Promise<void> {
  try {
    const archive = argv[1]!;
    const patterns = argv.slice(2);
    const local = isLocalPath(archive);
    if (!local) quietOnEpipe();
    process.exitCode = local
      ? await listLocal(archive, patterns)
      : await (
          await import("./commands/read.js")
        ).listCommand(archive, patterns, { long: false, json: false, sort: false });
  } catch (e) {
    reportFailure(e, false);
  }
}
