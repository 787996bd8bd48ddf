/**
 * Every error des-pack throws on purpose is a DesError with a stable `code`.
 * Callers branch on `code` (or `instanceof`), never on message text.
 */
export const DES_ERROR_CODES = [
  "DES_FORMAT",
  "DES_CHECKSUM",
  "DES_NOT_FOUND",
  "DES_DUPLICATE",
  "DES_EXISTS",
  "DES_CHANGED",
  "DES_UNSUPPORTED",
  "DES_INVALID_ARGUMENT",
  "DES_ABORTED",
  "DES_IO",
  "DES_EXTERNAL",
  "DES_CLOSED",
  "DES_LOCKED",
] as const;

export type DesErrorCode = (typeof DES_ERROR_CODES)[number];

export class DesError extends Error {
  readonly code: DesErrorCode;
  constructor(code: DesErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The bytes are not a DES archive, or a structure in it is inconsistent. */
export class DesFormatError extends DesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DES_FORMAT", message, options);
  }
}

/** What failed a checksum: an entry's data or meta, an index page, the root or the footer. */
export type ChecksumSubject =
  | { kind: "data"; name: string }
  | { kind: "meta"; name: string }
  | { kind: "page"; page: number }
  | { kind: "root" }
  | { kind: "footer" };

export class DesChecksumError extends DesError {
  readonly subject: ChecksumSubject;
  constructor(subject: ChecksumSubject, message?: string) {
    super("DES_CHECKSUM", message ?? `checksum mismatch in ${describeSubject(subject)}`);
    this.subject = subject;
  }
}

function describeSubject(s: ChecksumSubject): string {
  switch (s.kind) {
    case "data":
      return `data of entry ${JSON.stringify(s.name)}`;
    case "meta":
      return `meta of entry ${JSON.stringify(s.name)}`;
    case "page":
      return `index page ${s.page}`;
    case "root":
      return "index root";
    case "footer":
      return "footer";
  }
}

export class DesNotFoundError extends DesError {
  readonly entryName: string;
  constructor(name: string, message?: string) {
    super("DES_NOT_FOUND", message ?? `no entry named ${JSON.stringify(name)}`);
    this.entryName = name;
  }
}

export class DesDuplicateError extends DesError {
  readonly entryName: string;
  constructor(name: string) {
    super("DES_DUPLICATE", `an entry named ${JSON.stringify(name)} was already added`);
    this.entryName = name;
  }
}

/** The target (file or object key) exists and overwriting was not asked for. */
export class DesExistsError extends DesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DES_EXISTS", message, options);
  }
}

/** The archive changed under the reader (ETag / version mismatch) and reopening did not settle it. */
export class DesChangedError extends DesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DES_CHANGED", message, options);
  }
}

/** A valid archive uses something this reader does not implement (newer version, feature bit, flag). */
export class DesUnsupportedError extends DesError {
  constructor(message: string) {
    super("DES_UNSUPPORTED", message);
  }
}

export class DesInvalidArgumentError extends DesError {
  constructor(message: string) {
    super("DES_INVALID_ARGUMENT", message);
  }
}

export class DesAbortedError extends DesError {
  constructor(message = "the operation was aborted", options?: { cause?: unknown }) {
    super("DES_ABORTED", message, options);
  }
}

/** A read or write of the underlying storage failed (after any retries). */
export class DesIoError extends DesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DES_IO", message, options);
  }
}

/** An external ("big") entry could not be fetched or stored. */
export class DesExternalError extends DesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DES_EXTERNAL", message, options);
  }
}

export class DesClosedError extends DesError {
  constructor(what = "reader") {
    super("DES_CLOSED", `the ${what} is closed`);
  }
}

/** Another writer holds the archive (an append in progress); the operation did not wait. */
export class DesLockedError extends DesError {
  /** The lock file, and what its holder wrote into it (pid, host, since) when readable. */
  readonly lockPath: string;
  readonly holder: { readonly pid?: number; readonly host?: string; readonly since?: string } | undefined;
  constructor(message: string, lockPath: string, holder: DesLockedError["holder"]) {
    super("DES_LOCKED", message);
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DesAbortedError(undefined, { cause: signal.reason });
}
