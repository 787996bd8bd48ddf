import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { DesReader, LocalFolderStore, parseArchiveLocation } from "../index.js";
import type { ByteSink, Location, ReaderOptions, WriterOptions } from "../index.js";
import { CliError, UsageError } from "./output.js";

/** Where an archive argument points. */
export type ArchiveRef =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "stdio" }
  | { readonly kind: "s3"; readonly bucket: string; readonly key: string }
  | { readonly kind: "http"; readonly url: string };

export interface RemoteOptions {
  /** S3 endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS). */
  readonly endpoint?: string;
  /** Local folder of external bodies. */
  readonly externalDir?: string;
}

/** Parses `<archive>`: a path, `-`, `s3://bucket/key` or an http(s) URL. */
export function parseArchive(spec: string): ArchiveRef {
  if (spec === "-") return { kind: "stdio" };
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(spec);
  if (s3) return { kind: "s3", bucket: s3[1]!, key: s3[2]! };
  if (/^s3:/i.test(spec)) throw new UsageError(`${spec}: an S3 archive is s3://bucket/key`);
  if (/^https?:\/\//i.test(spec)) return { kind: "http", url: spec };
  return { kind: "file", path: spec };
}

/**
 * The Location holding a remote archive and its key there: `s3://` through
 * des-pack/s3 (loaded only then, with the AWS SDK), http(s) through the root
 * entry's read-only HttpLocation.
 */
async function remoteLocation(
  spec: string,
  opts: RemoteOptions,
): Promise<{ location: Location; key: string; close: () => void }> {
  if (!/^s3:/i.test(spec)) {
    const { location, key } = parseArchiveLocation(spec);
    return { location, key, close: () => undefined };
  }
  let s3: typeof import("../s3/index.js");
  let sdk: typeof import("@aws-sdk/client-s3");
  try {
    sdk = await import("@aws-sdk/client-s3");
    s3 = await import("../s3/index.js");
  } catch {
    throw new CliError("s3:// archives need the AWS SDK: npm install @aws-sdk/client-s3 @aws-sdk/lib-storage");
  }
  const endpoint = opts.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const client = new sdk.S3Client({
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
  });
  const { location, key } = s3.parseArchiveLocation(spec, { client });
  return { location, key, close: () => client.destroy() };
}

/** An open archive and how to let go of it. */
export interface OpenArchive {
  readonly reader: DesReader;
  /** The local file behind it (to refuse extracting over it), if any. */
  readonly localPath: string | undefined;
  close(): Promise<void>;
}

/** Opens an archive for reading, whatever `spec` names (stdin is spooled to a temp file first). */
export async function openArchive(
  spec: string,
  opts: RemoteOptions = {},
  readerOpts: ReaderOptions = {},
): Promise<OpenArchive> {
  const ref = parseArchive(spec);
  const external = opts.externalDir ? { externalStore: new LocalFolderStore(opts.externalDir) } : {};
  switch (ref.kind) {
    case "file": {
      const st = await fs.promises.stat(ref.path).catch(() => undefined);
      if (!st) throw new CliError(`${ref.path}: no such archive`);
      if (!st.isFile()) throw new CliError(`${ref.path}: not a regular file`);
      const reader = await DesReader.open(ref.path, { ...readerOpts, ...external });
      return { reader, localPath: path.resolve(ref.path), close: () => reader.close() };
    }
    case "stdio": {
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "des-pack-stdin-"));
      const file = path.join(dir, "stdin.des");
      const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
      process.once("exit", cleanup);
      try {
        await pipeline(process.stdin, fs.createWriteStream(file));
        const reader = await DesReader.open(file, { ...readerOpts, ...external });
        return {
          reader,
          localPath: undefined,
          close: async () => {
            await reader.close();
            cleanup();
          },
        };
      } catch (e) {
        cleanup();
        throw e;
      }
    }
    case "s3":
    case "http": {
      const { location, key, close } = await remoteLocation(spec, opts);
      try {
        const source = await location.source(key);
        const reader = await DesReader.open(source, {
          archiveKey: key,
          externalStore: location.externalStore(),
          ...readerOpts,
          ...external,
        });
        return {
          reader,
          localPath: undefined,
          close: async () => {
            await reader.close();
            await source.close?.();
            close();
          },
        };
      } catch (e) {
        close();
        throw e;
      }
    }
  }
}

/** Streams an archive to stdout as it is written (`pack ... -`). */
class StdoutSink implements ByteSink {
  readonly location = "(stdout)";
  /** Resolves once stdout is done with `chunk` (a sink may keep a chunk only until then: writers reuse their buffers). */
  async write(chunk: Uint8Array): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      process.stdout.write(chunk, (e) => (e ? reject(e) : resolve()));
    });
  }
  async commit(): Promise<void> {
    await new Promise<void>((resolve) => process.stdout.write(new Uint8Array(0), () => resolve()));
  }
  async abort(): Promise<void> {}
}

/** Where `pack` writes: a path (checked here: its folder must exist), stdout or S3. */
export async function archiveTarget(
  spec: string,
  overwrite: boolean,
  opts: RemoteOptions,
): Promise<{
  target: string | ByteSink;
  writerOpts: WriterOptions;
  close?: () => void;
}> {
  const ref = parseArchive(spec);
  const external = opts.externalDir ? { externalStore: new LocalFolderStore(opts.externalDir) } : {};
  switch (ref.kind) {
    case "file": {
      const dir = path.dirname(path.resolve(ref.path));
      const st = await fs.promises.stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new CliError(`${ref.path}: folder ${dir} does not exist`);
      return { target: ref.path, writerOpts: { overwrite, ...external } };
    }
    case "stdio":
      if (process.stdout.isTTY)
        throw new UsageError("refusing to write an archive to a terminal (redirect stdout, or name a file)");
      return { target: new StdoutSink(), writerOpts: { ...external } };
    case "s3": {
      const { location, key, close } = await remoteLocation(spec, opts);
      let sink: ByteSink;
      try {
        sink = await location.sink(key, { overwrite });
      } catch (e) {
        close();
        throw e;
      }
      return {
        target: sink,
        writerOpts: {
          externalStore: opts.externalDir ? new LocalFolderStore(opts.externalDir) : location.externalStore(),
        },
        close,
      };
    }
    case "http":
      throw new UsageError(`${spec}: http(s) archives can be read, not written (use s3://bucket/key)`);
  }
}
