import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DesInvalidArgumentError } from "../errors.js";
import type { IndexCache, IndexCacheStats } from "../io/cache.js";

export interface FsIndexCacheOptions {
  /** The folder (created if missing), e.g. `/tmp/des-index` on AWS Lambda. Give each cache its own. */
  readonly dir: string;
  /** Budget for the folder's files, in bytes. When it is passed, the least recently used go until 90% is left. */
  readonly maxBytes: number;
  /** Default lifetime of an entry; `set(..., { ttlMs })` overrides it. Default: no expiry. */
  readonly ttlMs?: number;
}

/** What FsIndexCache reports, beyond the common IndexCacheStats. */
export interface FsIndexCacheStats extends IndexCacheStats {
  /** Folder scans (sizing and eviction). */
  readonly scans: number;
}

// One file per key: a 28-byte header, the key (UTF-8), the value.
//   0  "DESC"            magic
//   4  u8  version (1), 3 bytes zero
//   8  f64 expiresAt     ms since the epoch, Infinity for none
//  16  f64 valueLength
//  24  u32 keyLength
const MAGIC = 0x43534544; // "DESC" read little-endian
const HEADER = 28;
const SUFFIX = ".dc";
const TMP_PREFIX = ".tmp-";
/** A temp file older than this was left by a process that died mid-write. */
const STALE_TMP_MS = 60_000;

function encode(key: string, value: Uint8Array, expiresAt: number): Uint8Array {
  const k = Buffer.from(key, "utf8");
  const out = Buffer.allocUnsafe(HEADER + k.length + value.byteLength);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(1, 4);
  out.writeDoubleLE(expiresAt, 8);
  out.writeDoubleLE(value.byteLength, 16);
  out.writeUInt32LE(k.length, 24);
  k.copy(out, HEADER);
  out.set(value, HEADER + k.length);
  return out;
}

type Decoded = { key: string; value: Uint8Array; expiresAt: number } | undefined;

function decode(buf: Buffer): Decoded {
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC || buf.readUInt32LE(4) !== 1) return undefined;
  const expiresAt = buf.readDoubleLE(8);
  const valueLength = buf.readDoubleLE(16);
  const keyLength = buf.readUInt32LE(24);
  if (HEADER + keyLength + valueLength !== buf.length || Number.isNaN(expiresAt)) return undefined;
  const key = buf.toString("utf8", HEADER, HEADER + keyLength);
  return { key, value: new Uint8Array(buf.buffer, buf.byteOffset + HEADER + keyLength, valueLength), expiresAt };
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * An IndexCache in a local folder, for what outlives one process on one
 * machine: AWS Lambda's `/tmp` across cold starts of a warm sandbox, or the
 * worker processes of one host.
 *
 * - Atomic: a value is written to a temp file and renamed into place, so a
 *   reader (of any process) sees the old file, the new one, or none; never
 *   a torn one. A file that does not decode is deleted and served as a miss.
 * - Bounded: the cache tracks the bytes it wrote; past `maxBytes` it scans
 *   the folder and deletes the least recently used files (hits refresh a
 *   file's mtime) down to 90% of the budget. With several processes the
 *   folder can overshoot by what the others wrote since the last scan.
 * - Several processes may share one folder: every step is a single file
 *   operation, and each is safe to lose a race (a file another process just
 *   deleted is a miss).
 */
export class FsIndexCache implements IndexCache {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly ttlMs: number | undefined;
  private ready: Promise<void> | undefined;
  private estimate: number | undefined;
  private files = 0;
  private scanning: Promise<void> | undefined;
  private seq = 0;
  private readonly tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  private hits = 0;
  private misses = 0;
  private sets = 0;
  private evictions = 0;
  private errors = 0;
  private scans = 0;

  constructor(opts: FsIndexCacheOptions) {
    if (!opts || typeof opts.dir !== "string" || opts.dir.length === 0)
      throw new DesInvalidArgumentError("FsIndexCache needs a dir");
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0)
      throw new DesInvalidArgumentError("FsIndexCache needs maxBytes, an integer >= 0");
    if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new DesInvalidArgumentError("ttlMs must be > 0");
    this.dir = path.resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
    this.ttlMs = opts.ttlMs;
  }

  /** The file that holds `key` (a hash of it: keys can be longer than a file name may be). */
  fileOf(key: string): string {
    return path.join(this.dir, createHash("sha256").update(key).digest("hex").slice(0, 40) + SUFFIX);
  }

  private mkdir(): Promise<void> {
    this.ready ??= fs.promises.mkdir(this.dir, { recursive: true }).then(() => undefined);
    return this.ready;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const file = this.fileOf(key);
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(file);
    } catch (e) {
      if (!isMissing(e)) this.errors++;
      this.misses++;
      return undefined;
    }
    const got = decode(buf);
    if (!got || got.key !== key) {
      // Foreign or damaged (or, vanishingly unlikely, a hash collision): drop it.
      if (!got) this.errors++;
      if (!got) await this.unlink(file);
      this.misses++;
      return undefined;
    }
    const now = Date.now();
    if (got.expiresAt <= now) {
      await this.unlink(file);
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Recency for eviction; losing this race (file already gone) is harmless.
    const t = new Date(now);
    fs.promises.utimes(file, t, t).catch(() => undefined);
    return got.value;
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async set(key: string, bytes: Uint8Array, opts: { readonly ttlMs?: number } = {}): Promise<void> {
    this.sets++;
    const ttl = opts.ttlMs ?? this.ttlMs;
    if (ttl !== undefined && !(ttl > 0)) return;
    const data = encode(key, bytes, ttl === undefined ? Infinity : Date.now() + ttl);
    if (data.byteLength > this.maxBytes) return;
    await this.mkdir();
    if (this.estimate === undefined) await this.scan();
    const file = this.fileOf(key);
    const tmp = path.join(this.dir, `${TMP_PREFIX}${this.tag}-${this.seq++}`);
    try {
      await fs.promises.writeFile(tmp, data, { flag: "wx" });
      await fs.promises.rename(tmp, file);
    } catch {
      this.errors++;
      await this.unlink(tmp);
      return;
    }
    this.estimate = (this.estimate ?? 0) + data.byteLength;
    this.files++;
    if (this.estimate > this.maxBytes) await this.scan();
  }

  async delete(key: string): Promise<void> {
    await this.unlink(this.fileOf(key));
  }

  async deletePrefix(prefix: string): Promise<number> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if (!isMissing(e)) this.errors++;
      return 0;
    }
    let n = 0;
    for (const name of names) {
      if (!name.endsWith(SUFFIX)) continue;
      const file = path.join(this.dir, name);
      const key = await readKey(file);
      if (key !== undefined && key.startsWith(prefix)) {
        await this.unlink(file);
        n++;
      }
    }
    if (n > 0) this.estimate = undefined; // rescan before the next write
    return n;
  }

  stats(): FsIndexCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      evictions: this.evictions,
      errors: this.errors,
      bytes: this.estimate ?? 0,
      entries: this.files,
      scans: this.scans,
    };
  }

  async close(): Promise<void> {
    await this.scanning;
  }

  /** Sizes the folder and, past the budget, deletes the least recently used files (one scan at a time). */
  private scan(): Promise<void> {
    this.scanning ??= this.doScan().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async doScan(): Promise<void> {
    this.scans++;
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if (!isMissing(e)) this.errors++;
      this.estimate = 0;
      this.files = 0;
      return;
    }
    const now = Date.now();
    const found: { file: string; size: number; mtime: number }[] = [];
    let total = 0;
    for (const name of names) {
      const file = path.join(this.dir, name);
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(file);
      } catch {
        continue; // gone meanwhile
      }
      if (name.startsWith(TMP_PREFIX)) {
        if (now - st.mtimeMs > STALE_TMP_MS) await this.unlink(file);
        else total += st.size; // another process is writing it
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      found.push({ file, size: st.size, mtime: st.mtimeMs });
      total += st.size;
    }
    let files = found.length;
    if (total > this.maxBytes) {
      found.sort((a, b) => a.mtime - b.mtime);
      const target = Math.floor(this.maxBytes * 0.9);
      for (const f of found) {
        if (total <= target) break;
        await this.unlink(f.file);
        total -= f.size;
        files--;
        this.evictions++;
      }
    }
    this.estimate = total;
    this.files = files;
  }

  private async unlink(file: string): Promise<void> {
    try {
      await fs.promises.unlink(file);
    } catch (e) {
      if (!isMissing(e)) this.errors++;
    }
  }
}

/** The key stored in a cache file's header, without reading its value. */
async function readKey(file: string): Promise<string | undefined> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(file, "r");
    const head = Buffer.alloc(HEADER);
    const { bytesRead } = await fh.read(head, 0, HEADER, 0);
    if (bytesRead < HEADER || head.readUInt32LE(0) !== MAGIC) return undefined;
    const keyLength = head.readUInt32LE(24);
    if (keyLength > 1 << 20) return undefined;
    const k = Buffer.alloc(keyLength);
    const r = await fh.read(k, 0, keyLength, HEADER);
    return r.bytesRead === keyLength ? k.toString("utf8") : undefined;
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}
