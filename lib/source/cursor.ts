/** @module A wiki's durable read position: newest timestamp seen plus the rcids inside the overlap. */

/** The serialised form kept in the checkpoint topic (keyed by wiki). */
export interface CheckpointValue {
  v: 1;
  wiki: string;
  host: string;
  /** Never read before this time (the `--since` of the first run, or the first start time). */
  floor: string;
  /** Newest event time published so far. */
  last_ts: string;
  /** [rcid, event time in epoch seconds] of rows at or after last_ts - overlap. */
  seen: [string, number][];
  updated_at: string;
}

/** Immutable cursor: `advance()` returns a new one, so state moves only after a publish commits. */
export class Cursor {
  readonly floorMs: number;
  readonly lastMs: number;
  readonly #seen: ReadonlyMap<string, number>;

  constructor(
    floorMs: number,
    lastMs: number,
    seen: ReadonlyMap<string, number> = new Map(),
  ) {
    this.floorMs = floorMs;
    this.lastMs = lastMs;
    this.#seen = seen;
  }

  /** Starts fresh at `iso`. */
  static at(iso: string): Cursor {
    const ms = Date.parse(iso);
    return new Cursor(ms, ms);
  }

  /** Restores from a checkpoint value. */
  static fromCheckpoint(value: CheckpointValue): Cursor {
    return new Cursor(
      Date.parse(value.floor),
      Date.parse(value.last_ts),
      new Map(value.seen.map(([id, s]) => [id, s * 1000])),
    );
  }

  /** Number of rcids remembered. */
  get seenCount(): number {
    return this.#seen.size;
  }

  /** Where the next walk starts: `overlapMs` before the newest time, never before the floor. */
  startFor(overlapMs: number): string {
    return new Date(Math.max(this.floorMs, this.lastMs - overlapMs))
      .toISOString();
  }

  /** Whether this rcid was already published. */
  has(rcid: string): boolean {
    return this.#seen.has(rcid);
  }

  /** A cursor that also remembers these rows; forgets rows older than the overlap (and past `maxSeen`). */
  advance(
    rows: { rcid: string; timestampMs: number }[],
    overlapMs: number,
    maxSeen = 200_000,
  ): Cursor {
    let last = this.lastMs;
    const seen = new Map(this.#seen);
    for (const r of rows) {
      seen.set(r.rcid, r.timestampMs);
      if (r.timestampMs > last) last = r.timestampMs;
    }
    const horizon = last - overlapMs;
    for (const [id, ts] of seen) if (ts < horizon) seen.delete(id);
    if (seen.size > maxSeen) {
      const sorted = [...seen].sort((a, b) => a[1] - b[1]);
      for (const [id] of sorted.slice(0, seen.size - maxSeen)) seen.delete(id);
    }
    return new Cursor(this.floorMs, last, seen);
  }

  /** The checkpoint value for this cursor. */
  toCheckpoint(wiki: string, host: string, now = new Date()): CheckpointValue {
    return {
      v: 1,
      wiki,
      host,
      floor: new Date(this.floorMs).toISOString(),
      last_ts: new Date(this.lastMs).toISOString(),
      seen: [...this.#seen].map(([id, ms]) => [id, Math.floor(ms / 1000)]),
      updated_at: now.toISOString(),
    };
  }
}
