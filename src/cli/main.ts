import fs from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { reportFailure } from "./fail.js";
import { CliError, quietOnEpipe } from "./output.js";

declare const __DES_PACK_VERSION__: string | undefined;

function version(): string {
  if (typeof __DES_PACK_VERSION__ === "string") return __DES_PACK_VERSION__;
  try {
    const url = new URL("../../package.json", import.meta.url);
    return (JSON.parse(fs.readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function int(what: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${what} must be a whole number >= ${min}`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface Globals {
  quiet?: boolean;
  verbose?: boolean;
  debug?: boolean;
  json?: boolean;
  endpoint?: string;
  externalDir?: string;
}

function remote(g: Globals): { endpoint?: string; externalDir?: string } {
  return { ...(g.endpoint ? { endpoint: g.endpoint } : {}), ...(g.externalDir ? { externalDir: g.externalDir } : {}) };
}

/** Builds the program; `setCode` receives each command's exit code. Commands load their modules when they run. */
export function program(setCode: (code: number) => void): Command {
  const p = new Command("des-pack")
    .description(
      "Pack many small files into one DES archive; list, read and extract them, from disk, stdin, S3 or HTTP.",
    )
    .version(version(), "-V, --version")
    .option("-q, --quiet", "no progress and no summary")
    .option("-v, --verbose", "name each entry as it is packed or extracted")
    .option("--json", "print a JSON summary (ls: one JSON object per entry)")
    .option("--debug", "print stack traces on errors")
    .option("--endpoint <url>", "S3 endpoint for s3:// archives (default: AWS_ENDPOINT_URL)")
    .option("--external-dir <dir>", "folder holding the archive's external bodies")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError("(run des-pack help <command> for its options)")
    .addHelpText(
      "after",
      `
<archive> is a path, - (stdout for pack, stdin for reading), s3://bucket/key,
or an https:// URL (reading only). Exit codes: 0 ok, 1 failed, 2 bad usage.`,
    );

  p.command("pack")
    .description(
      "pack folders and files into an archive (folders: names relative to the folder when it is the only input)",
    )
    .argument("<inputs-and-archive...>", "inputs (folders, files) then the archive")
    .option("-C, --directory <dir>", "resolve inputs from this folder")
    .option("--prefix <prefix>", "put every name under this prefix")
    .option("--exclude <glob>", "leave out names matching the glob (repeatable)", collect, [])
    .option("--include <glob>", "keep only files matching the glob (repeatable)", collect, [])
    .option("-T, --files-from <file>", "read more inputs from a file, one per line (- for stdin)")
    .addOption(
      new Option(
        "--compress <codec>",
        "none, gzip, brotli, or auto (gzip where it helps, not for already-compressed types)",
      ).default("none"),
    )
    .option("--level <n>", "compression level (gzip 1-9, brotli 0-11)", int("--level", 0))
    .addOption(
      new Option("--format <n>", "archive format: 2, or 1 for the Python DES (a flat folder only)")
        .default("2")
        .choices(["1", "2"]),
    )
    .option(
      "--big-file-threshold <bytes>",
      "with --external-dir: store bigger files outside the archive",
      int("--big-file-threshold", 0),
    )
    .option("-L, --follow-symlinks", "store what links point to instead of the links")
    .option("--no-metadata", "store file bytes only (no modes, times, folders or links)")
    .option("--no-owner", "do not store uid and gid")
    .option("--overwrite", "replace an existing archive")
    .action(async (operands: string[], o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/pack.js")
        ).packCommand(operands, {
          ...remote(g),
          directory: o.directory as string | undefined,
          prefix: o.prefix as string | undefined,
          exclude: o.exclude as string[],
          include: o.include as string[],
          filesFrom: o.filesFrom as string | undefined,
          compress: o.compress as string,
          level: o.level as number | undefined,
          format: Number(o.format),
          bigFileThreshold: o.bigFileThreshold as number | undefined,
          followSymlinks: o.followSymlinks === true,
          metadata: o.metadata !== false,
          owner: o.owner !== false,
          overwrite: o.overwrite === true,
          quiet: g.quiet === true,
          verbose: g.verbose === true,
          json: g.json === true,
        }),
      );
    });

  p.command("ls")
    .alias("list")
    .description("list entries (in index order as they are read; --sort for name order)")
    .argument("<archive>")
    .argument("[names...]", "names, folders or globs to list")
    .option("-l, --long", "mode, size, time, codec and name")
    .option("--sort", "sort by name (reads the whole index first)")
    .action(async (archive: string, names: string[], o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/read.js")
        ).listCommand(archive, names, {
          ...remote(g),
          long: o.long === true,
          json: g.json === true,
          sort: o.sort === true,
        }),
      );
    });

  p.command("cat")
    .description("write entries to stdout, each verified before its bytes are written")
    .argument("<archive>")
    .argument("<names...>")
    .action(async (archive: string, names: string[], _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/read.js")
        ).catCommand(archive, names, { ...remote(g), output: undefined, quiet: g.quiet === true }),
      );
    });

  p.command("get")
    .description("write one entry to stdout or to -o FILE (replaced only once the entry is verified)")
    .argument("<archive>")
    .argument("<name>")
    .option("-o, --output <file>", "write to this file instead of stdout")
    .action(async (archive: string, name: string, o: { output?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/read.js")
        ).catCommand(archive, [name], { ...remote(g), output: o.output, quiet: g.quiet === true }),
      );
    });

  const extract = (c: Command): Command =>
    c
      .option("-C, --directory <dir>", "extract into this folder (created if missing)")
      .option("--strip-components <n>", "drop this many leading name components", int("--strip-components", 0), 0)
      .option("-k, --keep-old-files", "never replace existing files: report them as failures (the default)")
      .option("-f, --force", "replace existing files (never the archive being read)")
      .option("--no-same-permissions", "apply the umask to stored modes")
      .option("--same-owner", "restore uid/gid (as root)")
      .option("--allow-unsafe-links", "also create links that point outside the target folder");

  const runExtract = async (
    archive: string,
    names: string[],
    dir: string | undefined,
    o: Record<string, unknown>,
    cmd: Command,
  ): Promise<void> => {
    const g = cmd.optsWithGlobals<Globals>();
    if (o.force && o.keepOldFiles) throw new CliError("--force and --keep-old-files contradict each other", 2);
    setCode(
      await (
        await import("./commands/extract.js")
      ).extractCommand(archive, names, {
        ...remote(g),
        directory: (o.directory as string | undefined) ?? dir ?? ".",
        stripComponents: o.stripComponents as number,
        force: o.force === true,
        samePermissions: o.samePermissions !== false,
        sameOwner: o.sameOwner === true,
        allowUnsafeLinks: o.allowUnsafeLinks === true,
        quiet: g.quiet === true,
        verbose: g.verbose === true,
        json: g.json === true,
      }),
    );
  };

  extract(p.command("extract").alias("x"))
    .description("extract entries (all, or the names, folders and globs given) safely into a folder")
    .argument("<archive>")
    .argument("[names...]")
    .action((archive: string, names: string[], o: Record<string, unknown>, cmd: Command) =>
      runExtract(archive, names, undefined, o, cmd),
    );

  extract(p.command("unpack"))
    .description("extract everything into <dir> (the same as extract <archive> -C <dir>)")
    .argument("<archive>")
    .argument("[dir]")
    .action((archive: string, dir: string | undefined, o: Record<string, unknown>, cmd: Command) =>
      runExtract(archive, [], dir, o, cmd),
    );

  const modifyFlags = (
    g: Globals,
  ): { quiet: boolean; verbose: boolean; json: boolean; endpoint?: string; externalDir?: string } => ({
    ...remote(g),
    quiet: g.quiet === true,
    verbose: g.verbose === true,
    json: g.json === true,
  });
  const codec = (v: string | undefined): "none" | "gzip" | "brotli" | undefined => {
    if (v === undefined || v === "none" || v === "gzip" || v === "brotli") return v;
    throw new CliError(`--compress must be none, gzip or brotli, not ${JSON.stringify(v)}`, 2);
  };

  p.command("append")
    .description("add files and folders to an archive as a new generation (nothing already written moves)")
    .argument("<archive>")
    .argument("<inputs...>")
    .option("-C, --directory <dir>", "resolve inputs from this folder (names are the paths as given)")
    .option("--prefix <prefix>", "put every new name under this prefix")
    .option("--replace", "replace entries whose names are already in the archive")
    .option("--compress <codec>", "none, gzip or brotli")
    .option("--no-metadata", "file bytes only (no modes, times, folders or links)")
    .action(async (archive: string, inputs: string[], o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const m = await import("./commands/modify.js");
      setCode(
        await m.appendCommand(archive, inputs, {
          ...modifyFlags(g),
          directory: o.directory as string | undefined,
          prefix: o.prefix as string | undefined,
          replace: o.replace === true,
          compress: codec(o.compress as string | undefined),
          metadata: o.metadata !== false,
        }),
      );
    });

  p.command("rm")
    .description("delete entries (names, folders or globs) as a new generation; repack reclaims the space")
    .argument("<archive>")
    .argument("<names...>")
    .action(async (archive: string, names: string[], _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(await (await import("./commands/modify.js")).rmCommand(archive, names, modifyFlags(g)));
    });

  p.command("repack")
    .description("write a compacted copy (in place without <out>): only live entries, stored bytes copied as they are")
    .argument("<archive>")
    .argument("[out]")
    .option("--exclude <glob>", "leave out entries matching the glob (repeatable)", collect, [])
    .addOption(new Option("--format <n>", "format of the new archive").choices(["1", "2"]))
    .option("--compress <codec>", "re-encode every body: none, gzip or brotli")
    .option("--overwrite", "replace an existing <out>")
    .action(async (archive: string, out: string | undefined, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/modify.js")
        ).repackCommand(archive, out, {
          ...modifyFlags(g),
          exclude: o.exclude as string[],
          format: o.format === undefined ? undefined : (Number(o.format) as 1 | 2),
          compress: codec(o.compress as string | undefined),
          overwrite: o.overwrite === true,
        }),
      );
    });

  p.command("merge")
    .description("write one archive from several")
    .argument("<out>")
    .argument("<archives...>")
    .addOption(
      new Option("--on-duplicate <rule>", "a name in several archives: error, first or last")
        .choices(["error", "first", "last"])
        .default("error"),
    )
    .option("--overwrite", "replace an existing <out>")
    .action(async (out: string, archives: string[], o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (
          await import("./commands/modify.js")
        ).mergeCommand(out, archives, {
          ...modifyFlags(g),
          onDuplicate: o.onDuplicate as "error" | "first" | "last",
          overwrite: o.overwrite === true,
        }),
      );
    });

  p.command("info")
    .description("format, generations, entries, section sizes, index pages, overhead per entry")
    .argument("<archive>")
    .action(async (archive: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(await (await import("./commands/read.js")).infoCommand(archive, { ...remote(g), json: g.json === true }));
    });

  p.command("verify")
    .description("check every checksum of the archive (exit 1 when anything is wrong)")
    .argument("<archive>")
    .action(async (archive: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      setCode(
        await (await import("./commands/read.js")).verifyCommand(archive, { ...remote(g), json: g.json === true }),
      );
    });

  return p;
}

export async function run(argv: string[]): Promise<void> {
  quietOnEpipe();
  let code = 0;
  const p = program((c) => (code = c));
  const debug = argv.includes("--debug");
  try {
    await p.parseAsync(argv, { from: "user" });
    process.exitCode = code;
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode =
        e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? 0 : 2;
      return;
    }
    reportFailure(e, debug);
  }
}
