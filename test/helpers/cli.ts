import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const DIST = path.resolve("dist/cli.js");
const LOCK = path.resolve("dist-build.lock");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

function fresh(): boolean {
  const st = fs.statSync(DIST, { throwIfNoEntry: false });
  return (
    st !== undefined && st.mtimeMs >= Math.max(newestSource(path.resolve("src")), fs.statSync("tsup.config.ts").mtimeMs)
  );
}

/**
 * The built command line (`npm run build`, then `node dist/cli.js`): built
 * once when dist is older than the sources; test files running at the same
 * time wait for one build (a lock folder).
 */
export function builtCli(): string {
  for (let waited = 0; !fresh();) {
    try {
      fs.mkdirSync(LOCK);
    } catch {
      if (waited > 180_000) throw new Error("timed out waiting for another test's build");
      spawnSync("sleep", ["0.2"]);
      waited += 200;
      continue;
    }
    try {
      if (!fresh()) {
        const r = spawnSync("npm", ["run", "build"], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
      }
    } finally {
      fs.rmdirSync(LOCK);
    }
  }
  return DIST;
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs the built CLI to completion. */
export function cli(
  args: readonly string[],
  opts: { input?: string | Uint8Array; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): CliResult {
  const r = spawnSync(process.execPath, [builtCli(), ...args], {
    encoding: "utf8",
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: { ...process.env, ...opts.env },
    maxBuffer: 256 << 20,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Runs the built CLI and returns the child (for signals and pipes). */
export function cliChild(args: readonly string[], opts: { cwd?: string } = {}): ReturnType<typeof spawn> {
  return spawn(process.execPath, [builtCli(), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
}

/** Runs the built CLI without blocking this process (for servers the test itself runs). */
export function cliAsync(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [builtCli(), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}
