import picomatch from "picomatch";
import { CliError } from "./output.js";

/**
 * Which entries a command's name arguments select: exact names, folder names
 * (everything under them) and globs (`*`, `**`, `?`, `[...]`, `{a,b}`).
 * No arguments select everything.
 */
export function selector(patterns: readonly string[]): ((name: string) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const globs: ((s: string) => boolean)[] = [];
  for (const p of patterns) {
    if (picomatch.scan(p).isGlob) globs.push(picomatch(p, { dot: true }));
    else {
      exact.add(p);
      prefixes.push(p.endsWith("/") ? p : `${p}/`);
    }
  }
  return (name) => {
    if (exact.has(name)) return true;
    for (const p of prefixes) if (name.startsWith(p)) return true;
    const bare = name.endsWith("/") ? name.slice(0, -1) : name;
    for (const g of globs) if (g(name) || g(bare)) return true;
    return false;
  };
}

/** Like `selector`, but also records which patterns matched. */
export function trackingSelector(
  patterns: readonly string[],
): { test: (name: string) => boolean; matched: Set<string>; requireAllMatched: () => void } | undefined {
  if (patterns.length === 0) return undefined;
  const matched = new Set<string>();
  const each = patterns.map((p) => ({ p, test: selector([p])! }));
  return {
    matched,
    /** A pattern that matched nothing is an error (so a typo is one, as in tar), naming every such pattern. */
    requireAllMatched: () => {
      const missing = patterns.filter((p) => !matched.has(p));
      if (missing.length > 0)
        throw new CliError(`not in the archive: ${missing.map((m) => JSON.stringify(m)).join(", ")}`);
    },
    test: (name) => {
      let any = false;
      for (const e of each)
        if (e.test(name)) {
          matched.add(e.p);
          any = true;
        }
      return any;
    },
  };
}
