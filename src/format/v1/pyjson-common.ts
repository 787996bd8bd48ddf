/** Values and limits shared by both halves of the Python-JSON codec (pyjson.ts, pyjson-loads.ts). */

export type PyJsonValue = null | boolean | number | bigint | string | PyJsonValue[] | { [key: string]: PyJsonValue };

/** Nesting limit for both directions; keeps recursion bounded (Python itself stops near 1000 too). */
export const MAX_DEPTH = 1000;

/**
 * CPython (3.11+) refuses int<->str conversion beyond this many digits
 * (sys.get_int_max_str_digits() default), so json.loads / json.dumps fail there.
 */
export const MAX_INT_DIGITS = 4300;

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
