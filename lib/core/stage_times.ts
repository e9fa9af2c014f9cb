/** @module Where the consumer's time goes: milliseconds summed per stage (metrics and the bench). */

/** Milliseconds spent per stage, summed over batches (concurrent batches each add their own). */
export interface StageTimes {
  /** Kafka fetch requests (kafkajs FETCH events). */
  fetch: number;
  /** UTF-8 decoding and JSON.parse of record values. */
  decode: number;
  /** Envelope and row schemas, storability checks and normalising into rows. */
  validate: number;
  /** Encoding the rows' COPY lines, ahead of their write. */
  encode: number;
  /** COPY of the rows (straight into the table, or into staging). */
  copy: number;
  /** The rollups (or the merge statement) and the redactions. */
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
  "encode",
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
    encode: 0,
    copy: 0,
    merge: 0,
    db_commit: 0,
    offset_commit: 0,
  };
}
