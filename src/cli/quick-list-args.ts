/**
 * `des-pack ls <archive> [names...]` with no option at all is the most run
 * command and the one whose first line is waited for: it goes straight to
 * the listing without loading the argument parser (anything else, including
 * any option, goes through the full parser in main.ts).
 */
export function isPlainList(argv: readonly string[]): boolean {
  return (argv[0] === "ls" || argv[0] === "list") && argv.length >= 2 && argv.every((a) => !a.startsWith("-"));
}
