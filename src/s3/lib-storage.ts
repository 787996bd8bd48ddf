import type { Upload } from "@aws-sdk/lib-storage";
import { DesUnsupportedError } from "../errors.js";

/**
 * `@aws-sdk/lib-storage` is needed to write to S3 only; reading never loads
 * it, so a reader-only deployment (a Lambda) can leave it out. Loaded on the
 * first upload; a missing package is a DesUnsupportedError that says so.
 */
let loading: Promise<typeof Upload> | undefined;

export function loadUpload(): Promise<typeof Upload> {
  loading ??= import("@aws-sdk/lib-storage").then(
    (m) => m.Upload,
    (e: unknown) => {
      loading = undefined;
      throw new DesUnsupportedError(
        `writing to S3 needs the optional peer dependency @aws-sdk/lib-storage (npm install @aws-sdk/lib-storage); it could not be loaded: ${(e as Error).message}`,
      );
    },
  );
  return loading;
}
