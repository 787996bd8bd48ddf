import { DesInvalidArgumentError } from "../errors.js";

/**
 * Location keys are `/`-separated, relative, and never climb: no empty key,
 * no leading `/`, no `.` or `..` segment, no empty segment, no NUL. The same
 * rule for every backend, so a key valid on S3 is valid in a folder.
 */
export function checkLocationKey(key: string, what = "key"): string {
  if (typeof key !== "string" || key.length === 0)
    throw new DesInvalidArgumentError(`a location ${what} must be a non-empty string`);
  if (key.includes("\0")) throw new DesInvalidArgumentError(`location ${what} ${JSON.stringify(key)} contains NUL`);
  for (const seg of key.split("/")) {
    if (seg === "" || seg === "." || seg === "..")
      throw new DesInvalidArgumentError(`location ${what} ${JSON.stringify(key)} has an empty, "." or ".." segment`);
  }
  return key;
}

/** A list prefix: empty, or a valid key prefix (may end with `/`). */
export function checkListPrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === "") return "";
  checkLocationKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix, "prefix");
  return prefix;
}

/** Orders keys by their UTF-8 bytes, as S3 lists them. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
