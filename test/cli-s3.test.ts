import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtCli, cli, cliAsync } from "./helpers/cli.js";
import { ensureBucket, s3Config, startMoto } from "./helpers/moto.js";
import type { Moto } from "./helpers/moto.js";
import { tempDir } from "./helpers/tmp.js";

let moto: Moto | undefined;
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  builtCli();
  moto = await startMoto();
  const client = new S3Client(s3Config(moto.endpoint));
  await ensureBucket(client, "cli-bucket");
  client.destroy();
  env = {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
  };
});

afterAll(async () => {
  await moto?.stop();
});

describe("s3:// archives through the CLI (moto)", () => {
  const dir = tempDir();

  it("pack ./tree s3://bucket/tree.des, then extract s3://... -C out gives the same tree", () => {
    const src = path.join(dir, "tree");
    fs.mkdirSync(path.join(src, "sub/empty"), { recursive: true });
    fs.writeFileSync(path.join(src, "a.txt"), "alpha");
    fs.writeFileSync(path.join(src, "sub/run.sh"), "#!/bin/sh\n");
    fs.chmodSync(path.join(src, "sub/run.sh"), 0o755);
    fs.symlinkSync("../a.txt", path.join(src, "sub/link"));
    const t = new Date("2022-02-02T02:02:02Z");
    fs.utimesSync(path.join(src, "a.txt"), t, t);
    const packed = cli(["pack", src, "s3://cli-bucket/trees/tree.des"], { cwd: dir, env });
    expect(packed.code, packed.err).toBe(0);
    expect(packed.err).toContain("s3://cli-bucket/trees/tree.des");
    expect(fs.existsSync(path.join(dir, "s3:"))).toBe(false);
    // Write-once: a second pack without --overwrite is refused.
    const again = cli(["pack", src, "s3://cli-bucket/trees/tree.des"], { cwd: dir, env });
    expect(again.code).toBe(1);
    const out = path.join(dir, "out");
    const ex = cli(["extract", "s3://cli-bucket/trees/tree.des", "-C", out], { env });
    expect(ex.code, ex.err).toBe(0);
    const diff = spawnSync("diff", ["-r", "--no-dereference", src, out], { encoding: "utf8" });
    expect(diff.status, diff.stdout).toBe(0);
    expect(fs.statSync(path.join(out, "sub/run.sh")).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(out, "a.txt")).mtimeMs).toBe(t.getTime());
    expect(fs.readlinkSync(path.join(out, "sub/link"))).toBe("../a.txt");
    expect(fs.statSync(path.join(out, "sub/empty")).isDirectory()).toBe(true);
    const ls = cli(["ls", "s3://cli-bucket/trees/tree.des", "--sort"], { env });
    expect(ls.out.trim().split("\n")).toEqual(["a.txt", "sub/", "sub/empty/", "sub/link", "sub/run.sh"]);
    const cat = cli(["cat", "s3://cli-bucket/trees/tree.des", "a.txt", "--endpoint", moto!.endpoint], {
      env: { ...env, AWS_ENDPOINT_URL: "http://127.0.0.1:9" },
    });
    expect(cat.out).toBe("alpha");
  });

  it("reads an archive over http(s) with range requests", async () => {
    const file = path.join(dir, "web.des");
    expect(cli(["pack", path.join(dir, "tree"), file]).code).toBe(0);
    const bytes = fs.readFileSync(file);
    const server = http.createServer((req, res) => {
      const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
      if (!m) {
        res.writeHead(200, { "content-length": bytes.length });
        res.end(bytes);
        return;
      }
      const start = m[1] === "" ? Math.max(0, bytes.length - Number(m[2])) : Number(m[1]);
      const end =
        m[1] === "" ? bytes.length - 1 : m[2] === "" ? bytes.length - 1 : Math.min(Number(m[2]), bytes.length - 1);
      res.writeHead(206, {
        "content-range": `bytes ${start}-${end}/${bytes.length}`,
        "content-length": end - start + 1,
        etag: '"v1"',
      });
      res.end(bytes.subarray(start, end + 1));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const url = `http://127.0.0.1:${port}/web.des`;
      const ls = await cliAsync(["ls", url, "--sort"]);
      expect(ls.code, ls.err).toBe(0);
      expect(ls.out.trim().split("\n")).toEqual(["a.txt", "sub/", "sub/empty/", "sub/link", "sub/run.sh"]);
      const cat = await cliAsync(["cat", url, "a.txt"]);
      expect(cat.out).toBe("alpha");
      const refused = await cliAsync(["pack", path.join(dir, "tree"), url]);
      expect(refused.code).toBe(2);
      expect(refused.err).toContain("can be read, not written");
    } finally {
      server.close();
    }
  });
});
