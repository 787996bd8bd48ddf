import { DesExternalError } from "../errors.js";
import { defaultExternalKey } from "../io/external.js";
import type { ExternalStore } from "../io/external.js";
import type { MetaValue } from "../format/meta.js";
import type { EntryRecord } from "../format/record.js";
import { decodeBody } from "./entry.js";

/** Where a reader finds external bodies and which keys it accepts. */
export interface ExternalConfig {
  readonly store: ExternalStore | undefined;
  readonly archiveKey: string | undefined;
  readonly externalPrefix: string | undefined;
  readonly allowOutsidePrefix: boolean;
}

function archiveDir(cfg: ExternalConfig): string | undefined {
  const k = cfg.archiveKey;
  return k?.includes("/") ? k.slice(0, k.lastIndexOf("/")) : undefined;
}

const collapse = (k: string): string => k.replace(/\/{2,}/g, "/");

/**
 * Refuses an external key that is not this entry's own `<prefix>/_bigFiles/<name>`
 * (unless the reader opted out): an archive must not be able to name an
 * arbitrary object of the store. The prefix is `externalPrefix`, else
 * `dirname(archiveKey)`; a reader that knows neither accepts any prefix but
 * still only `.../_bigFiles/<name>`. Runs of `/` compare as one (Python
 * joins `"pre/"` as `pre//_bigFiles/...`); `.` and `..` segments are refused.
 */
export function checkExternalKey(key: string, rec: EntryRecord, cfg: ExternalConfig): void {
  if (key.length === 0 || key.includes("\0"))
    throw new DesExternalError(`entry ${JSON.stringify(rec.name)}: invalid external key ${JSON.stringify(key)}`);
  if (cfg.allowOutsidePrefix) return;
  const k = collapse(key);
  const prefix = cfg.externalPrefix ?? archiveDir(cfg);
  const own = collapse(defaultExternalKey(rec.name, prefix));
  const suffix = collapse(defaultExternalKey(rec.name, undefined));
  const inside = prefix !== undefined ? k === own : k === suffix || k.endsWith(`/${suffix}`);
  if (!inside || k.split(/[/\\]/).some((seg) => seg === "." || seg === "..")) {
    throw new DesExternalError(
      `entry ${JSON.stringify(rec.name)}: external key ${JSON.stringify(key)} is not ${JSON.stringify(prefix !== undefined ? own : `.../${suffix}`)} ` +
        "(set externalPrefix, or allowExternalKeysOutsidePrefix to accept it)",
    );
  }
}

/** The key of an external entry: v2 records it; v1 keeps it in the meta, else the Python convention. */
export async function resolveExternalKey(
  rec: EntryRecord,
  cfg: ExternalConfig,
  readMeta: () => Promise<MetaValue | undefined>,
): Promise<string> {
  if (rec.externalKey !== undefined) return rec.externalKey;
  const meta = rec.metaLength > 0 ? await readMeta() : undefined;
  if (
    meta &&
    typeof meta === "object" &&
    !Array.isArray(meta) &&
    !(meta instanceof Uint8Array) &&
    !(meta instanceof Map)
  ) {
    const key = (meta as Record<string, unknown>)["external_key"];
    if (typeof key === "string" && key.length > 0) return key;
  }
  return defaultExternalKey(rec.name, archiveDir(cfg));
}

export function storeOf(rec: EntryRecord, cfg: ExternalConfig): ExternalStore {
  if (!cfg.store) throw new DesExternalError(`${JSON.stringify(rec.name)} is external and no externalStore was given`);
  return cfg.store;
}

/** Fetches an external body (the store reads at most its stored size + 1 bytes), checks its size, checksum and inflation. */
export async function fetchExternal(
  rec: EntryRecord,
  key: string,
  cfg: ExternalConfig,
  verify: boolean,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const store = storeOf(rec, cfg);
  checkExternalKey(key, rec, cfg);
  const body = await store.get(key, signal, { maxBytes: rec.storedSize });
  if (body.length !== rec.storedSize) {
    throw new DesExternalError(
      `external body ${JSON.stringify(key)} has ${body.length > rec.storedSize ? "more than " : ""}${body.length} bytes, index says ${rec.storedSize}`,
    );
  }
  return decodeBody(rec, body, verify);
}
