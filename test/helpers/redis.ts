import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import net from "node:net";
import { freePort } from "./moto.js";

/** A running Redis: a `redis-server` started here, or the one named by REDIS_URL. */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** PID of the child, undefined for an external server. */
  readonly pid: number | undefined;
  /** Whether this helper owns the server (so a test may kill and restart it). */
  readonly owned: boolean;
  /** Kills the server by PID (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts a fresh, empty server on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Stops the server for good; safe to call twice. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });
}

/** Sends PING over a raw socket; true on +PONG. */
export function ping(port: number, host = "127.0.0.1", timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    let buf = "";
    const end = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => end(false));
    s.on("error", () => end(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) end(buf.startsWith("+PONG"));
    });
  });
}

async function killByPid(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(child.pid, "SIGKILL");
  } catch {
    return;
  }
  await exited;
}

async function spawnOn(port: number, timeoutMs: number): Promise<ChildProcess> {
  hookExit();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const spawnError = new Promise<Error>((r) => child.once("error", (e) => r(e)));
  let failed: Error | undefined;
  void spawnError.then((e) => (failed = e));
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (failed) throw new Error(`redis-server could not start: ${failed.message} (is it installed?)`);
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
      if (await ping(port)) return child;
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer on port ${port} in time: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await killByPid(child);
    throw e;
  }
}

/**
 * Starts `redis-server --port P --save "" --appendonly no` on a free loopback
 * port and waits (bounded) until it answers PING; on failure the child is
 * killed by PID before the error is thrown. With REDIS_URL set, uses that
 * server and starts nothing (tests then use their own key prefixes, and the
 * kill/restart tests skip).
 */
export async function startRedis(opts: { timeoutMs?: number } = {}): Promise<TestRedis> {
  const external = process.env.REDIS_URL;
  if (external) {
    const u = new URL(external);
    return {
      url: external,
      port: Number(u.port || 6379),
      pid: undefined,
      owned: false,
      kill: async () => {
        throw new Error("an external Redis (REDIS_URL) is not killed by the tests");
      },
      restart: async () => undefined,
      stop: async () => undefined,
    };
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      let child: ChildProcess | undefined = await spawnOn(port, timeoutMs);
      let stopped = false;
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        get pid() {
          return child?.pid;
        },
        owned: true,
        kill: async () => {
          if (child) await killByPid(child);
          child = undefined;
        },
        restart: async () => {
          if (stopped) throw new Error("stopped");
          if (child) await killByPid(child);
          child = await spawnOn(port, timeoutMs);
        },
        stop: async () => {
          stopped = true;
          if (child) await killByPid(child);
          child = undefined;
        },
      };
    } catch (e) {
      lastError = e;
      if (!/in use|Address already/i.test(String(e))) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
