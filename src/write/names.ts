import { utf8Encode } from "../format/bytes.js";
import { MAX_NAME_BYTES } from "../format/constants.js";
import { DesInvalidArgumentError } from "../errors.js";
import type { EntryTable } from "./entry-table.js";

/** Characters the Python writer refuses in v1 names (spec 3.7). */
const V1_FORBIDDEN = /[/\\:*?"<>|]/;

/**
 * The one entry-name rule (spec 3.7), given the name and the length of its
 * UTF-8 encoding: 1..65,535 bytes, no NUL, well-formed Unicode, and in v1 none
 * of `/ \ : * ? " < > |`. Every path that accepts a name comes here.
 */
function checkName(name: string, byteLength: number, format: 1 | 2): void {
  if (byteLength === 0 || byteLength > MAX_NAME_BYTES) {
    throw new DesInvalidArgumentError(`entry names are 1..${MAX_NAME_BYTES} UTF-8 bytes (got ${byteLength})`);
  }
  if (name.includes("\0")) throw new DesInvalidArgumentError("entry names cannot contain NUL");
  // Only a name with a character beyond ASCII encodes to more bytes than it has code units.
  if (byteLength !== name.length && /[\uD800-\uDFFF]/.test(name) && !name.isWellFormed()) {
    throw new DesInvalidArgumentError("entry names must be well-formed Unicode (no lone surrogates)");
  }
  if (format === 1 && V1_FORBIDDEN.test(name)) {
    throw new DesInvalidArgumentError(`v1 entry names cannot contain / \\ : * ? " < > | (${JSON.stringify(name)})`);
  }
}

function checkString(name: unknown): asserts name is string {
  if (typeof name !== "string") throw new DesInvalidArgumentError("entry names are strings");
}

/**
 * Checks `name` and stages its UTF-8 bytes at the end of `table`'s arena
 * (see EntryTable.stageName: no allocation for an ASCII name). Returns the
 * byte length; `table.pushStaged` then adds it.
 */
export function stageEntryName(table: EntryTable, name: unknown, format: 1 | 2): number {
  checkString(name);
  // Every code unit is at least one byte: a name this long is refused before it is encoded.
  const length = name.length > MAX_NAME_BYTES ? Buffer.byteLength(name, "utf8") : table.stageName(name);
  checkName(name, length, format);
  return length;
}

/** Checks `name` and returns its UTF-8 bytes (for callers without an entry table, such as a delete). */
export function entryNameBytes(name: unknown, format: 1 | 2): Uint8Array {
  checkString(name);
  const bytes = name.length > MAX_NAME_BYTES ? undefined : utf8Encode(name);
  checkName(name, bytes?.length ?? Buffer.byteLength(name, "utf8"), format);
  return bytes!;
}
