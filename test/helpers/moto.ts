import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3ClientConfig } from "@aws-sdk/client-s3";

/** A running S3-protocol server: moto started here, or the one named by DES_TEST_S3_ENDPOINT. */
export interface Moto {
  readonly endpoint: string;
  /** PID of the moto child, undefined for an external server. */
  readonly pid: number | undefined;
  /** Kills the child (by PID) and waits for it; a no-op for an external server. Safe to call twice. */
  stop(): Promise<void>;
}

/** A free loopback port (the OS picks it; moto then binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) > 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: a worker that dies without running afterAll still takes its moto with it.
  process.on("exit", () => {
    for (const c of children)
      if (c.pid !== undefined && c.exitCode === null) {
        try {
          process.kill(c.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 3000).unref());
  if ((await Promise.race([exited, timer])) === "timeout") {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
}

/**
 * Starts `python3 -m moto.server` on a free loopback port and waits (bounded)
 * until it answers. If DES_TEST_S3_ENDPOINT is set, uses that server and
 * starts nothing. On any failure the child is killed before the error is
 * thrown.
 */
export async function startMoto(opts: { timeoutMs?: number } = {}): Promise<Moto> {
  const external = process.env.DES_TEST_S3_ENDPOINT;
  if (external) return { endpoint: external.replace(/\/+$/, ""), pid: undefined, stop: async () => undefined };
  installExitHook();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    children.add(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`moto exited (${child.exitCode ?? child.signalCode}): ${stderr.trim().slice(-500)}`);
        if (await answers(`${endpoint}/`)) break;
        if (Date.now() > deadline)
          throw new Error(`moto did not answer on ${endpoint} in time: ${stderr.trim().slice(-500)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      let stopped = false;
      return {
        endpoint,
        pid: child.pid,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await killChild(child);
        },
      };
    } catch (e) {
      await killChild(child);
      lastError = (e as Error).message;
      // A port taken between freePort() and moto's bind: try another one.
      if (!/address already in use|Errno 98/i.test(lastError) || Date.now() > deadline) break;
    }
  }
  throw new Error(`could not start moto: ${lastError}`);
}

/** The S3Client settings every test uses. */
export function s3Config(endpoint: string, extra: Partial<S3ClientConfig> = {}): S3ClientConfig {
  return {
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    ...extra,
  };
}

/** Counts every HTTP request the client sends (SDK retries included), by command. */
export interface RequestCounter {
  total: number;
  byCommand: Record<string, number>;
  /** `Range` headers of GetObject requests, in order. */
  ranges: string[];
  reset(): void;
}

/** An S3Client with a request counter on its middleware stack (inside the retry loop, so retries count). */
export function countingClient(
  endpoint: string,
  extra: Partial<S3ClientConfig> = {},
): { client: S3Client; counter: RequestCounter } {
  const client = new S3Client(s3Config(endpoint, extra));
  const counter: RequestCounter = {
    total: 0,
    byCommand: {},
    ranges: [],
    reset() {
      this.total = 0;
      this.byCommand = {};
      this.ranges = [];
    },
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? "unknown";
      counter.total++;
      counter.byCommand[name] = (counter.byCommand[name] ?? 0) + 1;
      const headers = (args.request as { headers?: Record<string, string> }).headers;
      if (name === "GetObjectCommand" && headers?.range) counter.ranges.push(headers.range);
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "desRequestCounter" },
  );
  return { client, counter };
}

/** Creates a bucket; an existing one (e.g. on a shared external server) is fine. */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    const name = (e as Error).name;
    if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") throw e;
  }
}
