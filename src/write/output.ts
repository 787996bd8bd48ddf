import { DesError, DesIoError } from "../errors.js";
import type { ByteSink } from "../io/sink.js";
import { FileSink } from "../sinks/file.js";

/** Any failure as the DES_IO error that poisons a writer (a DesIoError stays itself). */
export function ioError(what: string, e: unknown): DesIoError {
  if (e instanceof DesIoError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new DesIoError(`${what}: ${message}`, { cause: e });
}

/**
 * The writer's side of its sink: counts the bytes written and turns the
 * first failure of any write into the writer's poison. After a failure
 * every write and the commit throw that same DesIoError, so nothing more
 * reaches the sink and nothing is committed.
 */
export class Output {
  position = 0;
  failure: DesIoError | undefined;
  /** Index chunks handed to a FileSink and not yet written (see `writeOwned`). */
  private inFlight: Promise<void>[] = [];

  constructor(readonly sink: ByteSink) {}

  get location(): string {
    return this.sink.location;
  }

  /** Records a failure from anywhere (data, spill, sink) as the writer's poison, and returns it. */
  poison(e: unknown, what = "writing the archive failed"): DesIoError {
    this.failure ??= ioError(what, e);
    return this.failure;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Appends bytes (the sink may keep them only until this resolves). */
  async write(bytes: Uint8Array): Promise<void> {
    this.check();
    try {
      await this.sink.write(bytes);
    } catch (e) {
      throw this.poison(e);
    }
    this.position += bytes.length;
  }

  /**
   * Appends several byte ranges in order; they have reached the sink (a
   * FileSink: the file, in one pwritev) when this resolves.
   */
  async writeMany(chunks: readonly Uint8Array[]): Promise<void> {
    const sink = this.sink;
    if (!(sink instanceof FileSink)) {
      for (const c of chunks) if (c.length > 0) await this.write(c);
      return;
    }
    this.check();
    let total = 0;
    for (const c of chunks) total += c.length;
    try {
      await sink.writeMany(chunks);
    } catch (e) {
      throw this.poison(e);
    }
    this.position += total;
  }

  /**
   * Appends bytes the caller will not touch until `release` is called: a
   * FileSink keeps them without a copy. `release` is called exactly once,
   * also when the write fails.
   */
  async writeRetained(bytes: Uint8Array, release: () => void): Promise<void> {
    const sink = this.sink;
    if (!(sink instanceof FileSink)) {
      try {
        await this.write(bytes);
      } finally {
        release();
      }
      return;
    }
    try {
      this.check();
    } catch (e) {
      release();
      throw e;
    }
    // The length before the write: `release` may hand the buffer back to its owner
    // (a read-ahead thread), which detaches it and leaves `bytes` empty.
    const length = bytes.length;
    try {
      await sink.writeRetained(bytes, release);
    } catch (e) {
      throw this.poison(e);
    }
    this.position += length;
  }

  /**
   * Appends a buffer nobody else holds (an index chunk). A FileSink writes
   * it behind the data still queued while the next chunk is encoded (at
   * most two wait there; commit waits for every write).
   */
  async writeOwned(bytes: Uint8Array): Promise<void> {
    if (!(this.sink instanceof FileSink)) return this.write(bytes);
    const waiting = this.inFlight;
    while (waiting.length > 1) await waiting.shift();
    let release!: () => void;
    waiting.push(new Promise<void>((resolve) => (release = resolve)));
    await this.writeRetained(bytes, release);
  }

  /** Commits the sink. A DesError of the sink (DesExistsError) stays itself; any other failure is DES_IO. */
  async commit(): Promise<void> {
    this.check();
    try {
      await this.sink.commit();
    } catch (e) {
      if (e instanceof DesError && !(e instanceof DesIoError)) throw e;
      throw this.poison(e, "committing the archive failed");
    }
  }

  async abort(): Promise<void> {
    await this.sink.abort();
  }
}
