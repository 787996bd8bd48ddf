import fs from "node:fs";
import path from "node:path";

/**
 * What an archive name becomes on disk: its components (no "", ".", ".."),
 * and whether it names a directory (a trailing "/"). Undefined with a reason
 * when the name must not be extracted at all.
 */
export type SafeName = { readonly parts: readonly string[]; readonly dir: boolean } | { readonly refused: string };

const WINDOWS = process.platform === "win32";

/**
 * Archive names are data from whoever made the archive: refuse any that
 * could land outside the target (absolute, drive letters, "..", NUL) or that
 * Windows would read differently.
 */
export function safeName(name: string, strip = 0): SafeName {
  if (name.includes("\0")) return { refused: "contains NUL" };
  if (name.startsWith("/") || name.startsWith("\\")) return { refused: "is an absolute path" };
  if (/^[A-Za-z]:/.test(name)) return { refused: "starts with a drive letter" };
  if (WINDOWS && /[\\:*?"<>|]/.test(name)) return { refused: "holds a character Windows does not allow in file names" };
  const raw = name.split("/");
  if (raw.includes("..")) return { refused: 'has a ".." component' };
  const parts = raw.filter((p) => p !== "" && p !== ".");
  const dir = name.endsWith("/") || raw[raw.length - 1] === ".";
  if (parts.length <= strip) return { refused: "" };
  for (const p of parts) if (Buffer.byteLength(p) > 255) return { refused: "has a component longer than 255 bytes" };
  return { parts: parts.slice(strip), dir };
}

/** True when `p` is `root` or inside it (both absolute and normalised). */
export function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * True when a ".." in a link target follows a name ("d/..", "a/../b"): where
 * it leads then depends on what that name is when the link is followed (a
 * link made later can turn it into any folder), not on what is there when
 * the link is made. A leading run of ".." ("../../x") is fine.
 */
export function dotDotAfterName(target: string): boolean {
  let named = false;
  for (const p of target.split(/[/\\]/)) {
    if (p === "" || p === ".") continue;
    if (p !== "..") named = true;
    else if (named) return true;
  }
  return false;
}

/**
 * Where a symbolic link at `linkPath` (inside `root`) would lead, resolving
 * every link it meets on the way as the system would, lexically for what
 * does not exist yet. Undefined when the way leaves `root` at any point.
 */
export function linkStaysInside(root: string, linkPath: string, target: string, depth = 0): boolean {
  if (depth > 32 || path.isAbsolute(target) || target.includes("\0")) return false;
  let at = path.dirname(linkPath);
  const parts = target.split(/[/\\]/);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (at === root) return false;
      at = path.dirname(at);
      continue;
    }
    const next = path.join(at, p);
    const st = fs.lstatSync(next, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      const inner = fs.readlinkSync(next);
      if (!linkStaysInside(root, next, inner, depth + 1)) return false;
      // Continue from where that link leads.
      const resolved = resolveInside(root, next, inner);
      if (resolved === undefined) return false;
      at = resolved;
    } else at = next;
    if (!inside(root, at)) return false;
  }
  return inside(root, at);
}

function resolveInside(root: string, linkPath: string, target: string): string | undefined {
  let at = path.dirname(linkPath);
  for (const p of target.split(/[/\\]/)) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (at === root) return undefined;
      at = path.dirname(at);
    } else {
      const next = path.join(at, p);
      const st = fs.lstatSync(next, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) {
        try {
          at = fs.realpathSync(next);
        } catch {
          return undefined;
        }
      } else at = next;
    }
    if (!inside(root, at)) return undefined;
  }
  return at;
}
