import { DesInvalidArgumentError } from "../errors.js";
import { checkByte, checkDay, checkPrefix, nameHead, nameTail, snowflakeValue } from "./name.js";

export interface SnowflakeOptions {
  /** 0..255, unique per writer that shares a namespace. */
  readonly nodeId: number;
  /** Non-empty ASCII letters and digits. Default "DES". */
  readonly prefix?: string;
  /**
   * How many low bits of the epoch milliseconds go into a name, 1..32.
   * Default 32 (names repeat after 2^32 ms, about 49.7 days). The Python
   * DES's environment config defaults to 10, which repeats names every 1.024 s.
   */
  readonly wrapBits?: number;
  /** Epoch milliseconds. Default `Date.now`. */
  readonly clock?: (() => number) | undefined;
  /**
   * The time zone of the name's day, an IANA name such as "Europe/Warsaw".
   * Default UTC. (The Python generator uses the machine's local date.)
   */
  readonly timeZone?: string | undefined;
  /** Computes the day of a name from its epoch milliseconds; overrides `timeZone`. */
  readonly day?: ((epochMs: number) => string | Date) | undefined;
  /**
   * Continue after a name minted earlier with this node id (a restart): names
   * come from a later millisecond, or from the same one with a higher seq.
   */
  readonly after?: { readonly ms: number; readonly seq: number } | undefined;
}

export interface NextOptions {
  /** The day in the name: a Date (in the generator's time zone) or "YYYY-MM-DD". Default: the day of the name's millisecond. */
  readonly day?: Date | string;
}

const TWO_53 = 2 ** 53;

/**
 * Mints Snowflake names compatible with the Python DES. Names from one
 * generator are unique while its clock does not wrap: a clock that goes
 * backwards is pinned to the last millisecond used, 256 names fit in one
 * millisecond, and the 257th waits (asynchronously) for the clock to pass it.
 */
export class SnowflakeNameGenerator {
  readonly nodeId: number;
  readonly prefix: string;
  readonly wrapBits: number;
  private readonly clock: () => number;
  private readonly dayOf: (ms: number) => string;
  private readonly mask: number;
  private readonly maskBig: bigint;
  private ms = -Infinity;
  private seq = 255;
  private chain: Promise<string> | undefined;
  /** The head of the names of `headDay` (prefix and day), built once per day. */
  private headDay = "";
  private head = "";

  constructor(opts: SnowflakeOptions) {
    if (typeof opts !== "object" || opts === null)
      throw new DesInvalidArgumentError("SnowflakeNameGenerator needs options");
    this.nodeId = checkByte("nodeId", opts.nodeId);
    this.prefix = checkPrefix(opts.prefix ?? "DES");
    const w = opts.wrapBits ?? 32;
    if (!Number.isInteger(w) || w < 1 || w > 32)
      throw new DesInvalidArgumentError(`wrapBits must be an integer 1..32, not ${String(w)}`);
    this.wrapBits = w;
    this.mask = 2 ** w;
    this.maskBig = (1n << BigInt(w)) - 1n;
    this.clock = opts.clock ?? Date.now;
    if (typeof this.clock !== "function")
      throw new DesInvalidArgumentError("clock must be a function returning epoch milliseconds");
    this.dayOf = dayFunction(opts.timeZone, opts.day);
    if (opts.after !== undefined) {
      const { ms, seq } = opts.after;
      if (!Number.isFinite(ms)) throw new DesInvalidArgumentError("after.ms must be a finite number");
      this.ms = Math.floor(ms);
      this.seq = checkByte("after.seq", seq);
    }
  }

  /** The millisecond and seq of the last name minted (or of `after`), undefined before any. */
  get last(): { readonly ms: number; readonly seq: number } | undefined {
    return this.ms === -Infinity ? undefined : { ms: this.ms, seq: this.seq };
  }

  /** The millisecond of the last name minted (-Infinity before the first): `last.ms` without an object. */
  get lastMs(): number {
    return this.ms;
  }

  /**
   * The next name. Resolves at once unless this millisecond's 256 names are
   * used up; then it waits for the next millisecond without blocking the
   * event loop. Concurrent calls get distinct names in call order.
   */
  next(opts: NextOptions = {}): Promise<string> {
    if (this.chain === undefined) {
      try {
        const name = this.mint(opts);
        if (name !== undefined) return Promise.resolve(name);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const prev = this.chain;
    const run: Promise<string> = (prev ? prev.then(noop, noop) : Promise.resolve()).then(() => this.mintWaiting(opts));
    this.chain = run;
    const clear = (): void => {
      if (this.chain === run) this.chain = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /**
   * The next name now, or undefined when this millisecond's 256 names are used
   * up (call `next` to wait for the next millisecond). Throws like `next`.
   */
  tryNext(opts: NextOptions = {}): string | undefined {
    if (this.chain !== undefined) return undefined;
    return this.mint(opts);
  }

  private mint(opts: NextOptions): string | undefined {
    const raw = this.clock();
    if (typeof raw !== "number" || !Number.isFinite(raw))
      throw new DesInvalidArgumentError(`the clock returned ${String(raw)}, not a finite number of milliseconds`);
    const now = Math.floor(raw);
    // Resolve the day before touching the state, so a bad day leaves the generator as it was.
    const ms = now > this.ms ? now : this.ms;
    const seq = now > this.ms ? 0 : this.seq + 1;
    if (seq > 255) return undefined;
    const day = this.resolveDay(opts.day, ms);
    this.ms = ms;
    this.seq = seq;
    if (day !== this.headDay) {
      this.head = nameHead(this.prefix, day);
      this.headDay = day;
    }
    // Every part is checked already: the prefix and node at construction, the day by resolveDay, seq here.
    return this.head + nameTail(snowflakeValue(this.lowBits(ms), this.nodeId, seq));
  }

  private async mintWaiting(opts: NextOptions): Promise<string> {
    for (;;) {
      const name = this.mint(opts);
      if (name !== undefined) return name;
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
    }
  }

  /** The low `wrapBits` bits of ms, two's complement for negative values (as Python's `&`). */
  private lowBits(ms: number): number {
    if (ms >= 0 && ms < TWO_53) return ms % this.mask;
    return Number(BigInt(ms) & this.maskBig);
  }

  private resolveDay(day: Date | string | undefined, ms: number): string {
    if (day === undefined) return this.dayOf(ms);
    if (typeof day === "string") return checkDay(day);
    if (day instanceof Date) return this.dayOf(day.getTime());
    throw new DesInvalidArgumentError("day must be a Date or a YYYY-MM-DD string");
  }
}

function noop(): void {}

/** The day function: the caller's, one for an IANA time zone, or UTC. Cached per 15 minutes (zone offsets change on quarter hours). */
function dayFunction(
  timeZone: string | undefined,
  custom: ((ms: number) => string | Date) | undefined,
): (ms: number) => string {
  let format: (ms: number) => string;
  if (custom !== undefined) {
    if (typeof custom !== "function") throw new DesInvalidArgumentError("day must be a function of epoch milliseconds");
    return (ms) => {
      const d = custom(ms);
      if (d instanceof Date) return utcDay(d.getTime());
      return checkDay(d);
    };
  }
  if (timeZone !== undefined) {
    let fmt: Intl.DateTimeFormat;
    try {
      fmt = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    } catch (e) {
      throw new DesInvalidArgumentError(`unknown time zone ${JSON.stringify(timeZone)}: ${(e as Error).message}`);
    }
    format = (ms) => {
      const parts = fmt.formatToParts(checkedDate(ms));
      const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "";
      return checkDay(`${get("year").padStart(4, "0")}-${get("month")}-${get("day")}`);
    };
  } else {
    format = utcDay;
  }
  let bucket = NaN;
  let cached = "";
  return (ms) => {
    const b = Math.floor(ms / 900_000);
    if (b !== bucket) {
      cached = format(ms);
      bucket = b;
    }
    return cached;
  };
}

function checkedDate(ms: number): Date {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime()))
    throw new DesInvalidArgumentError(`epoch milliseconds ${ms} are outside the range of dates; pass next({ day })`);
  return d;
}

function utcDay(ms: number): string {
  const d = checkedDate(ms);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new DesInvalidArgumentError(`year ${y} has no YYYY form; pass next({ day })`);
  return `${String(y).padStart(4, "0")}-${String(d.getUTCMonth() + 1).padStart(2, "0")}-${String(d.getUTCDate()).padStart(2, "0")}`;
}
