import fs from "node:fs";
import path from "node:path";
import { DesExistsError, DesIoError } from "../errors.js";
import type { Location } from "../io/location.js";
import type { RangeSource } from "../io/source.js";
import { DesReader } from "../read/reader.js";
import { DesWriter } from "../write/writer.js";
import { merge } from "../write/merge.js";
import { syncDir } from "../io/local-files.js";
import { FileSink } from "../sinks/file.js";

/**
 * Where sealed parts live: a folder (written in place) or any Location (parts
 * are written to a local spool, uploaded write-once, and the spool copy is
 * removed only after the upload is verified).
 */
export interface PartBackend {
  readonly url: string;
  /** Keys starting with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  open(key: string): Promise<DesReader>;
  /** Writes a new immutable part; "existed" when the key is already there (then it is left unchanged). */
  create(key: string, fill: (w: DesWriter) => Promise<void>): Promise<"written" | "existed">;
  /**
   * Writes `key` (whether or not it exists) as the merge of the parts
   * `sources`, stored bytes copied as they are; a name in several sources
   * comes from the first. Readers see the old or the new part, never a mix.
   * Resolves with the number of entries written.
   */
  mergeInto(key: string, sources: readonly string[]): Promise<number>;
  delete(key: string): Promise<void>;
  /** Uploads whatever was sealed but not yet uploaded (after a restart). */
  recover(): Promise<void>;
  /** Makes every part `create` wrote so far durable under its name (a seal calls it before deleting its journal). */
  settle(): Promise<void>;
}

function checkKey(key: string): void {
  if (key.includes("..") || key.startsWith("/") || key.includes("\\"))
    throw new DesIoError(`bad part key ${JSON.stringify(key)}`);
}

export class FolderParts implements PartBackend {
  readonly url: string;
  /** Folders that got new parts since the last settle(). */
  private readonly unsynced = new Set<string>();
  constructor(base: string) {
    this.url = path.resolve(base);
  }

  private pathOf(key: string): string {
    checkKey(key);
    return path.join(this.url, key);
  }

  async list(prefix: string): Promise<string[]> {
    const slash = prefix.lastIndexOf("/");
    const dir = prefix.slice(0, slash + 1);
    const start = prefix.slice(slash + 1);
    let names: string[];
    try {
      names = await fs.promises.readdir(path.join(this.url, dir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new DesIoError(`cannot list ${dir}: ${(e as Error).message}`, { cause: e });
    }
    return names
      .filter((n) => n.startsWith(start))
      .map((n) => dir + n)
      .sort();
  }

  open(key: string): Promise<DesReader> {
    return DesReader.open(this.pathOf(key), { syncReads: true });
  }

  async create(key: string, fill: (w: DesWriter) => Promise<void>): Promise<"written" | "existed"> {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    if (!this.unsynced.has(dir)) {
      // Folders made here (a new day) need their own names made durable too: each parent up to the
      // one that existed joins the folders settle() syncs.
      const first = await fs.promises.mkdir(dir, { recursive: true });
      // Every folder from `first` down to `dir` is new; each one's name is in its parent.
      for (let d = dir; first !== undefined; d = path.dirname(d)) {
        this.unsynced.add(path.dirname(d));
        if (d === first || d === path.dirname(d)) break;
      }
    }
    // A seal writes hundreds of parts into one day's folder: the folder is synced once, in settle().
    this.unsynced.add(dir);
    try {
      const sink = await FileSink.create(file, { overwrite: false, syncDir: false });
      await DesWriter.write(sink, {}, fill);
    } catch (e) {
      if (e instanceof DesExistsError) return "existed";
      throw e;
    }
    return "written";
  }

  async settle(): Promise<void> {
    // Deepest first: a folder's entries are durable before its own name is.
    const dirs = [...this.unsynced].sort((a, b) => b.length - a.length);
    for (const dir of dirs) {
      await syncDir(dir);
      this.unsynced.delete(dir);
    }
  }

  async mergeInto(key: string, sources: readonly string[]): Promise<number> {
    const file = this.pathOf(key);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const r = await merge(
      sources.map((k) => this.pathOf(k)),
      file,
      { onDuplicate: "first", overwrite: true },
    );
    return r.added;
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    await fs.promises.rm(file, { force: true });
    await syncDir(path.dirname(file));
  }

  async recover(): Promise<void> {}
}

const UPLOAD_CHUNK = 8 << 20;

export class LocationParts implements PartBackend {
  readonly url: string;
  /** Sealed parts not yet uploaded: key -> spool file. */
  private readonly pending = new Map<string, string>();

  constructor(
    private readonly location: Location,
    private readonly spool: string,
  ) {
    this.url = location.url;
  }

  private spoolOf(key: string): string {
    checkKey(key);
    return path.join(this.spool, key);
  }

  async list(prefix: string): Promise<string[]> {
    const keys = new Set<string>();
    for await (const e of this.location.list(prefix)) keys.add(e.key);
    for (const k of this.pending.keys()) if (k.startsWith(prefix)) keys.add(k);
    return [...keys].sort();
  }

  async open(key: string): Promise<DesReader> {
    const local = this.pending.get(key);
    if (local !== undefined) return DesReader.open(local);
    return DesReader.open(await this.location.source(key));
  }

  async create(key: string, fill: (w: DesWriter) => Promise<void>): Promise<"written" | "existed"> {
    if (this.pending.has(key)) return "existed";
    const local = this.spoolOf(key);
    await fs.promises.mkdir(path.dirname(local), { recursive: true });
    await DesWriter.write(local, { overwrite: true }, fill);
    this.pending.set(key, local);
    return (await this.upload(key, local, false)) ? "written" : "existed";
  }

  async mergeInto(key: string, sources: readonly string[]): Promise<number> {
    const local = `${this.spoolOf(key)}.replace`;
    await fs.promises.mkdir(path.dirname(local), { recursive: true });
    const opened: RangeSource[] = [];
    try {
      const from = await Promise.all(
        sources.map(async (k) => {
          const spooled = this.pending.get(k);
          if (spooled !== undefined) return spooled;
          const src = await this.location.source(k);
          opened.push(src);
          return src;
        }),
      );
      // merge closes only the sources it opened from paths; these are ours to close.
      const r = await merge(from, local, { onDuplicate: "first", overwrite: true });
      await this.upload(key, local, true);
      return r.added;
    } finally {
      await Promise.all(opened.map((s) => s.close?.().catch(() => undefined)));
    }
  }

  /**
   * Uploads a spool file (write-once unless `overwrite`), checks the object's
   * size, then removes the spool file. True when this call created the object.
   */
  private async upload(key: string, local: string, overwrite: boolean): Promise<boolean> {
    const size = (await fs.promises.stat(local)).size;
    let created = true;
    try {
      const sink = await this.location.sink(key, { overwrite });
      try {
        const fh = await fs.promises.open(local, "r");
        try {
          const buf = Buffer.allocUnsafe(Math.min(UPLOAD_CHUNK, Math.max(size, 1)));
          for (let at = 0; at < size;) {
            const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
            if (bytesRead === 0) throw new DesIoError(`${local} shrank while uploading`);
            await sink.write(new Uint8Array(buf.buffer, buf.byteOffset, bytesRead));
            at += bytesRead;
          }
        } finally {
          await fh.close();
        }
        await sink.commit();
      } catch (e) {
        await sink.abort();
        throw e;
      }
    } catch (e) {
      if (!(e instanceof DesExistsError)) throw e;
      created = false; // uploaded before a restart: verified below like a fresh upload
    }
    const st = await this.location.stat(key);
    if (!st || st.size !== size) {
      throw new DesIoError(
        `upload of ${key} not verified: the object has ${st ? `${st.size} bytes` : "vanished"}, the spool file ${size}`,
      );
    }
    await fs.promises.rm(local, { force: true });
    if (this.pending.get(key) === local) this.pending.delete(key);
    return created;
  }

  async delete(key: string): Promise<void> {
    await this.location.delete(key);
  }

  /** Spool files are synced as they are written; uploads are durable when they complete. */
  async settle(): Promise<void> {}

  /** Re-uploads every spool file left by an earlier run (sealed but not uploaded). */
  async recover(): Promise<void> {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let ents: fs.Dirent[];
      try {
        ents = await fs.promises.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith(".des")) files.push(p);
        else if (e.name.endsWith(".replace")) await fs.promises.rm(p, { force: true });
      }
    };
    await walk(this.spool);
    for (const f of files) {
      const key = path.relative(this.spool, f).split(path.sep).join("/");
      this.pending.set(key, f);
    }
    for (const [key, f] of [...this.pending]) await this.upload(key, f, false);
  }
}
