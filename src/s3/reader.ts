import { DesReader } from "../read/reader.js";
import type { ReaderOptions } from "../read/reader.js";
import { S3ExternalStore } from "./external.js";
import { S3Source } from "./source.js";
import type { S3ObjectRef, S3SourceOptions } from "./source.js";

/** Reader options plus the S3 source's retry and pinning options. */
export interface S3ReaderOptions extends ReaderOptions, Omit<S3SourceOptions, "hints"> {}

/**
 * Opens DES archives on S3. The result is the core DesReader (one parser for
 * every backend) over an S3Source: opening costs one suffix-range GET,
 * lookups at most one index-page GET, batches are coalesced with S3 hints
 * (1 MiB gap, 8 MiB span, 8 in flight), every GET is pinned to the ETag.
 * External entries are read from the same bucket (S3ExternalStore) unless
 * another `externalStore` is given; v1 entries without `meta.external_key`
 * resolve to `<dirname(key)>/_bigFiles/<name>`.
 */
export const S3DesReader = {
  async open(ref: S3ObjectRef, opts: S3ReaderOptions = {}): Promise<DesReader> {
    const {
      bodyRetries,
      retryBaseMs,
      retryMaxMs,
      ifMatch,
      responseTimeoutMs,
      bodyTimeoutMs,
      requireRanges,
      ...readerOpts
    } = opts;
    const sourceOpts: S3SourceOptions = {};
    if (responseTimeoutMs !== undefined) sourceOpts.responseTimeoutMs = responseTimeoutMs;
    if (bodyTimeoutMs !== undefined) sourceOpts.bodyTimeoutMs = bodyTimeoutMs;
    if (requireRanges !== undefined) sourceOpts.requireRanges = requireRanges;
    if (bodyRetries !== undefined) sourceOpts.bodyRetries = bodyRetries;
    if (retryBaseMs !== undefined) sourceOpts.retryBaseMs = retryBaseMs;
    if (retryMaxMs !== undefined) sourceOpts.retryMaxMs = retryMaxMs;
    if (ifMatch !== undefined) sourceOpts.ifMatch = ifMatch;
    const source = new S3Source(ref, sourceOpts);
    return DesReader.open(source, {
      ...readerOpts,
      archiveKey: readerOpts.archiveKey ?? ref.key,
      externalStore:
        readerOpts.externalStore ??
        new S3ExternalStore({
          client: ref.client,
          bucket: ref.bucket,
          ...(responseTimeoutMs !== undefined ? { responseTimeoutMs } : {}),
          ...(bodyTimeoutMs !== undefined ? { bodyTimeoutMs } : {}),
        }),
    });
  },
};
