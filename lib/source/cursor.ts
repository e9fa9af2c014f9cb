/** @module A wiki's durable read position: newest wiki time seen, plus the rcids published inside the re-read windows. */
import { IdRanges } from "./_id_ranges.ts";

/** The serialised form kept in the checkpoint topic (keyed by wiki, or by backfill). */
export interface CheckpointValue {
  v: 2;
  wiki: string;
  host: string;
  /** Never read before this time (the `--since` of the first run, or the first start time). */
  floor: string;
  /** Newest event time published so far, never past the wiki's own clock. */
  last_ts: string;
  /** The rcids published inside the remembered window, as {@linkcode IdRanges} text. */
  seen: string;
  /** [bucket start in epoch seconds, lowest rcid published with a time in that bucket]. */
  marks: [number, string][];
  /** Wiki time of the last completed reconcile pass. */
  reconciled_at?: string;
  updated_at: string;
}

/** The first checkpoint form (rcid and time pairs); restored, never written. */
export interface CheckpointValueV1 {
  v: 1;
  wiki: string;
  host: string;
  floor: string;
  last_ts: string;
  seen: [string, number][];
  updated_at: string;
}

/** How a cursor moves: the windows it remembers and the wiki's clock. */
export interface AdvanceOptions {
  /** How far behind the newest time rcids are remembered (the widest re-read window). */
  keepMs: number;
  /** The wiki's current time: no row moves the cursor past it. */
  wikiNowMs: number;
  /** Upper bound of the encoded id ranges, in characters. */
  maxSeenChars?: number;
}

/** Width of one mark bucket. */
const BUCKET_MS = 300_000;
/** Default budget of the id ranges: the whole checkpoint stays far below 64 KiB. */
const MAX_SEEN_CHARS = 48_000;

/** Immutable cursor: `advance()` returns a new one, so state moves only after a publish commits. */
export class Cursor {
  readonly floorMs: number;
  readonly lastMs: number;
  /** Wiki time of the last completed reconcile pass (0: never). */
  readonly reconciledMs: number;
  readonly #seen: IdRanges;
  readonly #marks: ReadonlyMap<number, bigint>;

  constructor(
    floorMs: number,
    lastMs: number,
    state: {
      seen?: IdRanges;
      marks?: Map<number, bigint>;
      reconciledMs?: number;
    } = {},
  ) {
    this.floorMs = floorMs;
    this.lastMs = lastMs;
    this.#seen = state.seen ?? new IdRanges();
    this.#marks = state.marks ?? new Map();
    this.reconciledMs = state.reconciledMs ?? 0;
  }

  /** Starts fresh at `iso`. */
  static at(iso: string): Cursor {
    const ms = Date.parse(iso);
    return new Cursor(ms, ms);
  }

  /** Restores from a checkpoint value (either form); throws RangeError on a corrupt one. */
  static fromCheckpoint(value: CheckpointValue | CheckpointValueV1): Cursor {
    const floor = Date.parse(value.floor), last = Date.parse(value.last_ts);
    if (value.v === 1) {
      const seen = new IdRanges();
      const marks = new Map<number, bigint>();
      for (const [id, s] of value.seen) {
        seen.add(BigInt(id));
        addMark(marks, s * 1000, BigInt(id));
      }
      return new Cursor(floor, last, { seen, marks });
    }
    return new Cursor(floor, last, {
      seen: IdRanges.decode(value.seen),
      marks: new Map(value.marks.map(([s, id]) => [s * 1000, BigInt(id)])),
      reconciledMs: value.reconciled_at ? Date.parse(value.reconciled_at) : 0,
    });
  }

  /** Number of rcids remembered. */
  get seenCount(): number {
    return this.#seen.size;
  }

  /** Where the next walk starts: `windowMs` before the newest time, never before the floor. */
  startFor(windowMs: number): string {
    return new Date(Math.max(this.floorMs, this.lastMs - windowMs))
      .toISOString();
  }

  /** Whether this rcid was already published. */
  has(rcid: string): boolean {
    return this.#seen.has(BigInt(rcid));
  }

  /** A cursor that also remembers these rows, forgetting rcids no window can read again. */
  advance(
    rows: { rcid: string; timestampMs: number }[],
    options: AdvanceOptions,
  ): Cursor {
    let last = this.lastMs;
    const seen = this.#seen.clone();
    const marks = new Map(this.#marks);
    for (const r of rows) {
      const id = BigInt(r.rcid);
      seen.add(id);
      // A row stamped after the wiki's own now counts as now: the cursor never runs ahead.
      const ts = Math.min(r.timestampMs, options.wikiNowMs);
      addMark(marks, ts, id);
      if (ts > last) last = ts;
    }
    forget(seen, marks, last - options.keepMs, options);
    return new Cursor(this.floorMs, last, {
      seen,
      marks,
      reconciledMs: this.reconciledMs,
    });
  }

  /** This cursor, with a reconcile pass completed at wiki time `ms`. */
  reconciled(ms: number): Cursor {
    return new Cursor(this.floorMs, this.lastMs, {
      seen: this.#seen,
      marks: new Map(this.#marks),
      reconciledMs: ms,
    });
  }

  /** The checkpoint value for this cursor. */
  toCheckpoint(wiki: string, host: string, now = new Date()): CheckpointValue {
    return {
      v: 2,
      wiki,
      host,
      floor: new Date(this.floorMs).toISOString(),
      last_ts: new Date(this.lastMs).toISOString(),
      seen: this.#seen.encode(),
      marks: [...this.#marks].sort((a, b) => a[0] - b[0]).map((
        [ms, id],
      ) => [ms / 1000, String(id)]),
      ...(this.reconciledMs
        ? { reconciled_at: new Date(this.reconciledMs).toISOString() }
        : {}),
      updated_at: now.toISOString(),
    };
  }
}

/** Notes `id` as published at `ms` in the bucket's lowest-rcid mark. */
function addMark(marks: Map<number, bigint>, ms: number, id: bigint): void {
  const bucket = Math.floor(ms / BUCKET_MS) * BUCKET_MS;
  const low = marks.get(bucket);
  if (low === undefined || id < low) marks.set(bucket, id);
}

/**
 * Drops the buckets wholly before `horizon` and every rcid below the lowest one still marked:
 * a row with a time at or after the horizon has an rcid at or above its bucket's mark. Then trims
 * the oldest ranges past the size budget (a forgotten id can only be published twice, and the
 * sink drops the repeat).
 */
function forget(
  seen: IdRanges,
  marks: Map<number, bigint>,
  horizon: number,
  options: AdvanceOptions,
): void {
  let low: bigint | undefined;
  for (const [bucket, id] of marks) {
    if (bucket + BUCKET_MS <= horizon) marks.delete(bucket);
    else if (low === undefined || id < low) low = id;
  }
  if (low === undefined) seen.clear();
  else seen.dropBelow(low);
  const max = options.maxSeenChars ?? MAX_SEEN_CHARS;
  let text = seen.encode().length;
  while (text > max && seen.rangeCount > 1) {
    const keep = Math.floor(seen.rangeCount * (max / text) * 0.9);
    const cut = seen.lowOfLast(Math.max(1, keep));
    if (cut !== undefined) seen.dropBelow(cut);
    text = seen.encode().length;
  }
}
