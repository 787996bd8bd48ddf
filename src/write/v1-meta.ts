import { utf8Encode } from "../format/bytes.js";
import { pyJsonDumps } from "../format/v1/pyjson.js";
import { DesInvalidArgumentError } from "../errors.js";

/**
 * Python's reader (json.loads) gives up near 994 levels of nesting,
 * depending on its own stack: v1 meta is refused beyond 990 (the meta
 * object itself is level 1). Spec 2.3.
 */
export const V1_MAX_META_DEPTH = 990;
/** The Python writer's MAX_META_SIZE: a meta document over 10 MiB is refused. */
export const V1_MAX_META_BYTES = 10 * 1024 * 1024;

/** v1 meta the caller may pass: nothing, a plain object or a Map (of Python-JSON values). */
export function checkV1Meta(meta: unknown): void {
  if (meta === undefined || meta === null || meta instanceof Map) return;
  const proto: unknown = typeof meta === "object" ? Object.getPrototypeOf(meta) : undefined;
  if (typeof meta !== "object" || (proto !== Object.prototype && proto !== null)) {
    throw new DesInvalidArgumentError("v1 meta must be a plain object or a Map");
  }
}

/**
 * The key the Python writer gives an external body: `${prefix}/_bigFiles/${name}`,
 * joined as it is (`"pre/"` gives `pre//_bigFiles/...`). Without a prefix
 * (which the Python writer cannot be given) the key is `_bigFiles/<name>`.
 */
export function v1ExternalKey(name: string, prefix: string | undefined): string {
  return prefix === undefined ? `_bigFiles/${name}` : `${prefix}/_bigFiles/${name}`;
}

/**
 * The meta document the Python writer stores, as UTF-8: the caller's keys
 * in order, then `size` (replacing a caller's `size` in place), then for
 * external entries `is_external` and, unless the prefix is empty (Python
 * tests it for truth), `external_key`. Map.set keeps an existing key's
 * position, exactly like a Python dict. Refuses what Python would refuse
 * or could not read back: nesting beyond V1_MAX_META_DEPTH, more than
 * V1_MAX_META_BYTES.
 */
export function v1MetaDocument(
  meta: unknown,
  size: number,
  external: { key: string; prefix: string | undefined } | undefined,
): Uint8Array {
  const m = new Map<string, unknown>();
  if (meta instanceof Map) for (const [k, v] of meta) m.set(String(k), v);
  else if (meta && typeof meta === "object") for (const [k, v] of Object.entries(meta)) m.set(k, v);
  m.set("size", size);
  if (external) {
    m.set("is_external", true);
    if (external.prefix !== "") m.set("external_key", external.key);
  }
  const bytes = utf8Encode(pyJsonDumps(m, { maxDepth: V1_MAX_META_DEPTH }));
  if (bytes.length > V1_MAX_META_BYTES) {
    throw new DesInvalidArgumentError(
      `v1 meta is ${bytes.length} bytes; the Python writer refuses more than ${V1_MAX_META_BYTES}`,
    );
  }
  return bytes;
}
