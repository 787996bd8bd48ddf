import { DesError, DesExternalError, DesInvalidArgumentError, DesIoError, DesUnsupportedError } from "../errors.js";
import { maxBytesOf } from "../io/external.js";
import type { ExternalGetOptions, ExternalStore } from "../io/external.js";
import type { Location, LocationEntry } from "../io/location.js";
import type { ByteSink } from "../io/sink.js";
import type { RangeSource } from "../io/source.js";
import { HttpSource } from "../sources/http.js";
import type { HttpSourceOptions } from "../sources/http.js";
import { checkLocationKey } from "./keys.js";

function readOnly(url: string, what: string): never {
  throw new DesUnsupportedError(`${url} is an HTTP location: read-only (${what} needs a folder or s3:// location)`);
}

/**
 * An `http(s)://` base URL as a read-only Location: sources are HttpSources
 * (range GETs), `stat` is a HEAD; writing, listing and deleting are refused
 * with DES_UNSUPPORTED (plain HTTP has no listing or conditional write).
 */
export class HttpLocation implements Location {
  readonly url: string;
  private readonly base: URL;
  private readonly opts: HttpSourceOptions;

  constructor(url: string, opts: HttpSourceOptions = {}) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new DesInvalidArgumentError(`invalid URL ${JSON.stringify(url)}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new DesInvalidArgumentError(`not an http(s) URL: ${url}`);
    if (!u.pathname.endsWith("/")) u.pathname += "/";
    this.base = u;
    this.url = u.toString();
    this.opts = opts;
  }

  /** The URL a key names (each segment percent-encoded). */
  urlOf(key: string): string {
    const rel = checkLocationKey(key).split("/").map(encodeURIComponent).join("/");
    const u = new URL(rel, this.base);
    u.search = this.base.search;
    return u.toString();
  }

  child(key: string): HttpLocation {
    return new HttpLocation(this.urlOf(key), this.opts);
  }

  async source(key: string): Promise<RangeSource> {
    return new HttpSource(this.urlOf(key), this.opts);
  }

  sink(): Promise<ByteSink> {
    return Promise.reject(
      new DesUnsupportedError(`${this.url} is an HTTP location: read-only (writing needs a folder or s3:// location)`),
    );
  }

  /**
   * External bodies under the base URL, read-only: a body is one GET of its
   * last byte (which tells its size and version), then one pinned range GET
   * of the whole body, refused when it is longer than `maxBytes`.
   */
  externalStore(): ExternalStore {
    const get = async (key: string, signal?: AbortSignal, opts?: ExternalGetOptions): Promise<Uint8Array> => {
      const max = maxBytesOf(opts);
      const src = new HttpSource(this.urlOf(key), this.opts);
      try {
        const { size, version } = await src.readTail(1, signal);
        if (max !== undefined && size > max)
          throw new DesExternalError(`external body ${src.url} is ${size} bytes, more than the ${max} expected`);
        return await src.read(0, size, signal, version);
      } catch (e) {
        if (
          e instanceof DesExternalError ||
          (e instanceof DesError && (e.code === "DES_ABORTED" || e.code === "DES_INVALID_ARGUMENT"))
        )
          throw e;
        throw new DesExternalError(`external body ${src.url} is not readable: ${(e as Error).message}`, { cause: e });
      }
    };
    return {
      put: () => Promise.reject(new DesUnsupportedError(`${this.url}: external bodies cannot be stored over HTTP`)),
      get,
      stream: async function* (key: string, signal?: AbortSignal, opts?: ExternalGetOptions) {
        yield await get(key, signal, opts);
      },
    };
  }

  async stat(key: string, signal?: AbortSignal): Promise<LocationEntry | undefined> {
    const f = this.opts.fetch ?? globalThis.fetch;
    let res: Response;
    try {
      res = await f(this.urlOf(key), {
        method: "HEAD",
        headers: { ...this.opts.headers },
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      throw new DesIoError(`HEAD ${this.urlOf(key)} failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status === 404 || res.status === 410) return undefined;
    if (!res.ok) throw new DesIoError(`HEAD ${this.urlOf(key)}: HTTP ${res.status}`);
    const len = Number(res.headers.get("content-length") ?? Number.NaN);
    return { key, size: Number.isSafeInteger(len) ? len : 0, version: res.headers.get("etag") ?? undefined };
  }

  list(): AsyncIterable<LocationEntry> {
    return readOnly(this.url, "listing");
  }

  delete(): Promise<void> {
    return Promise.reject(
      new DesUnsupportedError(`${this.url} is an HTTP location: read-only (delete needs a folder or s3:// location)`),
    );
  }
}
