import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { DesError, DesReader, LocalFolderStore, packDirectory } from "../index.js";
import type { Compression } from "../index.js";

const USAGE = `des-pack: many small files in one DES archive

usage:
  des-pack pack <dir> <out.des> [--format 1|2] [--compress none|gzip|brotli] [--overwrite]
                [--external-dir DIR --big-file-threshold BYTES]
  des-pack list <archive> [--long]
  des-pack get <archive> <name> [-o FILE]        (stdout without -o)
  des-pack unpack <archive> <dir>
  des-pack verify <archive> [--external-dir DIR]
  des-pack info <archive>

exit codes: 0 ok, 1 failed (the message names the error code), 2 usage`;

class UsageError extends Error {}

function need(args: string[], n: number, what: string): void {
  if (args.length !== n) throw new UsageError(`${what} takes ${n} argument${n === 1 ? "" : "s"}`);
}

function parseCompression(v: string | undefined): Compression | undefined {
  if (v === undefined) return undefined;
  if (v === "none" || v === "gzip" || v === "brotli") return v;
  throw new UsageError(`--compress must be none, gzip or brotli, not ${v}`);
}

async function withReader<T>(file: string, externalDir: string | undefined, fn: (r: DesReader) => Promise<T>): Promise<T> {
  const r = await DesReader.open(file, externalDir ? { externalStore: new LocalFolderStore(externalDir) } : {});
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      compress: { type: "string" },
      overwrite: { type: "boolean" },
      long: { type: "boolean" },
      output: { type: "string", short: "o" },
      "external-dir": { type: "string" },
      "big-file-threshold": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + "\n");
    return command || values.help ? 0 : 2;
  }
  const externalDir = values["external-dir"];
  switch (command) {
    case "pack": {
      need(args, 2, "pack");
      const [dir, out] = args as [string, string];
      const format = values.format === undefined ? 2 : Number(values.format);
      if (format !== 1 && format !== 2) throw new UsageError("--format must be 1 or 2");
      const compress = parseCompression(values.compress);
      const threshold = values["big-file-threshold"];
      await fs.promises.mkdir(path.dirname(path.resolve(out)), { recursive: true });
      const t0 = performance.now();
      const stats = await packDirectory(dir, out, {
        format,
        overwrite: values.overwrite ?? false,
        ...(compress ? { compress } : {}),
        ...(externalDir ? { externalStore: new LocalFolderStore(externalDir) } : {}),
        ...(threshold !== undefined ? { bigFileThreshold: Number(threshold) } : {}),
      });
      const secs = (performance.now() - t0) / 1000;
      process.stdout.write(
        `${stats.location}: ${stats.entries} entries, ${humanBytes(stats.originalBytes)} in, ${humanBytes(stats.archiveBytes)} archive (v${stats.formatVersion}, ${stats.indexPages} index pages) in ${secs.toFixed(2)} s\n`,
      );
      return 0;
    }
    case "list": {
      need(args, 1, "list");
      await withReader(args[0]!, externalDir, async (r) => {
        const names = await r.list();
        if (!values.long) {
          process.stdout.write(names.map((n) => n + "\n").join(""));
          return;
        }
        for (let i = 0; i < names.length; i += 1000) {
          const batch = names.slice(i, i + 1000);
          const stats = await Promise.all(batch.map((n) => r.stat(n)));
          process.stdout.write(
            stats
              .map((s) => `${String(s.size).padStart(12)} ${s.compression.padEnd(6)} ${s.external ? "ext" : "   "} ${s.name}\n`)
              .join(""),
          );
        }
      });
      return 0;
    }
    case "get": {
      need(args, 2, "get");
      await withReader(args[0]!, externalDir, async (r) => {
        const out = values.output ? fs.createWriteStream(values.output) : process.stdout;
        await pipeline(r.stream(args[1]!), out);
      });
      return 0;
    }
    case "unpack": {
      need(args, 2, "unpack");
      const [file, dir] = args as [string, string];
      const root = path.resolve(dir);
      await withReader(file, externalDir, async (r) => {
        const names = await r.list();
        for (let i = 0; i < names.length; i += 1000) {
          const batch = names.slice(i, i + 1000);
          for await (const [name, body] of r.iterMany(batch)) {
            const target = path.resolve(root, name);
            // Archive names are data: never let one write outside the target folder.
            if (!target.startsWith(root + path.sep)) throw new UsageError(`refusing to unpack ${JSON.stringify(name)} outside ${root}`);
            await fs.promises.mkdir(path.dirname(target), { recursive: true });
            await fs.promises.writeFile(target, body);
          }
        }
        process.stdout.write(`${names.length} entries unpacked into ${root}\n`);
      });
      return 0;
    }
    case "verify": {
      need(args, 1, "verify");
      const report = await withReader(args[0]!, externalDir, (r) => r.verify());
      process.stdout.write(
        `v${report.formatVersion}: ${report.entries} entries, ${report.dataChecked} bodies and ${report.metaChecked} metas checked, ${report.pages} index pages` +
          (report.externalSkipped ? `, ${report.externalSkipped} external entries not checked (no --external-dir)` : "") +
          "\n",
      );
      for (const p of report.problems) process.stdout.write(`  ${p.code} ${p.name ?? (p.page !== undefined ? `page ${p.page}` : "")}: ${p.message}\n`);
      process.stdout.write(report.ok ? "ok\n" : "FAILED\n");
      return report.ok ? 0 : 1;
    }
    case "info": {
      need(args, 1, "info");
      await withReader(args[0]!, externalDir, async (r) => {
        process.stdout.write(`format v${r.formatVersion}\nsize ${r.size} bytes\nentries ${r.entryCount}\n`);
      });
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

export async function run(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      process.stderr.write(`des-pack: ${(e as Error).message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (e instanceof DesError) {
      process.stderr.write(`des-pack: ${e.code}: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`des-pack: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
}
