/**
 * Where a writer's bytes go, strictly in order. The writer never seeks, so a
 * file, a multipart upload or a network stream can all be sinks.
 */
export interface ByteSink {
  /** Where the archive will be visible once committed (a path, `s3://bucket/key`). */
  readonly location: string;
  /**
   * Bytes accepted so far (by `write` and any sink-specific write method),
   * whether or not they have reached the medium yet: what a size-based
   * rollover compares with its limit. Every sink of this library has it;
   * optional only so that sinks written against older versions still compile.
   */
  readonly bytesWritten?: number;
  /** Appends bytes. The sink may keep `chunk` only until the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the archive durable and visible under its final name, all at once. */
  commit(): Promise<void>;
  /** Discards everything. Safe after a failure and safe to call twice. */
  abort(): Promise<void>;
}
