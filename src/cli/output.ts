/** Errors, stdout with EPIPE handling, escaped names and the progress line of the command line. */

/** A failure the user should read as one line: exit 1 (2 for usage errors). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Control characters (C0, DEL, C1), backslash and lone surrogates need escaping in a listing. */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u001f\u007f-\u009f\\\u2028\u2029]|[\uD800-\uDFFF]/;

/** A name as it can be printed on one line of a terminal: control characters as C-style escapes. */
export function escapeName(name: string): string {
  if (!NEEDS_ESCAPE.test(name)) return name;
  let out = "";
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff))
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out;
}

let stdoutClosed = false;

/** Ends the process quietly when stdout's reader goes away (`des-pack ls x.des | head`). */
export function quietOnEpipe(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") {
      stdoutClosed = true;
      process.exit(process.exitCode ?? 0);
    }
    throw e;
  });
}

/** Buffered stdout writer that waits for the pipe to drain. */
export class Out {
  private buf: string[] = [];
  private bytes = 0;

  line(s: string): void | Promise<void> {
    this.buf.push(s, "\n");
    this.bytes += s.length + 1;
    if (this.bytes >= 64 << 10) return this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0 || stdoutClosed) return;
    const text = this.buf.join("");
    this.buf = [];
    this.bytes = 0;
    await writeStdout(text);
  }
}

/** Writes to stdout, resolving once the data has been accepted (backpressure respected). */
export function writeStdout(chunk: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stdoutClosed) return resolve();
    const ok = process.stdout.write(chunk, (e) => (e ? reject(e) : undefined));
    if (ok) resolve();
    else process.stdout.once("drain", resolve);
  });
}

export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * One line on stderr, redrawn at most 10 times a second: files, bytes, rate
 * and ETA. Only on a terminal, never with -q.
 */
export class Progress {
  private files = 0;
  private bytes = 0;
  private last = 0;
  private readonly start = performance.now();
  private drawn = false;
  readonly enabled: boolean;

  constructor(
    private readonly verb: string,
    opts: { quiet: boolean; totalFiles?: number; totalBytes?: number },
    private readonly totals: { files?: number; bytes?: number } = {
      ...(opts.totalFiles !== undefined ? { files: opts.totalFiles } : {}),
      ...(opts.totalBytes !== undefined ? { bytes: opts.totalBytes } : {}),
    },
  ) {
    this.enabled = !opts.quiet && process.stderr.isTTY === true;
  }

  add(files: number, bytes: number): void {
    this.files += files;
    this.bytes += Math.max(0, bytes);
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw(now);
  }

  private draw(now: number): void {
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? this.bytes / secs : 0;
    const { files: tf, bytes: tb } = this.totals;
    let bar = "";
    let eta = "";
    if (tb !== undefined && tb > 0) {
      const f = Math.min(1, this.bytes / tb);
      const w = 20;
      bar = `[${"#".repeat(Math.round(f * w)).padEnd(w, ".")}] ${(f * 100).toFixed(0).padStart(3)}% `;
      eta = ` ETA ${clock(rate > 0 ? (tb - this.bytes) / rate : NaN)}`;
    }
    const files = tf !== undefined ? `${this.files}/${tf}` : `${this.files}`;
    const text = `${this.verb} ${bar}${files} files, ${humanBytes(this.bytes)}, ${humanBytes(rate)}/s${eta}`;
    process.stderr.write(`\r${text.slice(0, (process.stderr.columns || 80) - 1)}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line (the summary follows on its own line). */
  done(): void {
    if (this.drawn) process.stderr.write("\r\x1b[K");
    this.drawn = false;
  }
}
