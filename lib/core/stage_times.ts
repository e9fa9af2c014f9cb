/** @module Where the consumer's time goes: milliseconds summed per stage (metrics and the bench). */

/** Milliseconds spent per stage, summed over batches (concurrent batches each add their own). */
export interface StageTimes {
  /** Kafka fetch requests (kafkajs FETCH events). */
  fetch: number;
  /** UTF-8 decoding and JSON.parse of record values. */
  decode: number;
  /** Envelope and row schemas, storability checks and normalising into rows. */
  validate: number;
  /** COPY of the rows into the staging table, encoding included. */
  copy: number;
  /** The merge statement (cast, insert on conflict, per-minute aggregates). */
  merge: number;
  /** PostgreSQL COMMIT and transaction set-up. */
  db_commit: number;
  /** Committing the offsets to Kafka. */
  offset_commit: number;
}

/** The stage names, in pipeline order. */
export const STAGES = [
  "fetch",
  "decode",
  "validate",
  "copy",
  "merge",
  "db_commit",
  "offset_commit",
] as const satisfies readonly (keyof StageTimes)[];

/** Fresh zeroed stage times. */
export function newStageTimes(): StageTimes {
  return {
    fetch: 0,
    decode: 0,
    validate: 0,
    copy: 0,
    merge: 0,
    db_commit: 0,
    offset_commit: 0,
  };
}
