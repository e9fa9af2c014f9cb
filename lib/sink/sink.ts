/**
 * @module The PostgreSQL sink: COPY straight into the table when the rows are new, else COPY into
 * staging and merge idempotently; derive per-minute, hourly and daily activity.
 */
import { pipelined, type Sql, type Transaction } from "./db.ts";
import { COLUMNS, copyChunks, copyIn } from "./copy.ts";
import { copyNumbers, MERGE_SQL, STAGE_DDL } from "./_merge_sql.ts";
import { activityJson, directEarliest, ROLLUP_SQL } from "./_direct_sql.ts";
import { applyRedactions, type RedactionOptions } from "./redactions.ts";
import { MonthPartitions } from "./partitions.ts";
import { MERGE_LOCK, RETENTION_LOCK } from "./_locks.ts";
import type { ChangeRow } from "../source/normalise.ts";
import { isRowError } from "../core/errors.ts";
import { OwnedPool, type PoolFactory } from "./_pool.ts";
import {
  insertDeadLetters,
  markReplayed,
  rowDeadLetter,
} from "./_dead_letter.ts";
import type { Logger } from "../core/log.ts";
import type { StageTimes } from "../core/stage_times.ts";

/** The Kafka record a row was decoded from: kept so a rejected row dead-letters as it came. */
export interface SourceRecord {
  topic: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  timestamp?: string;
}

/** A change row plus where it was read from in Kafka. */
export interface SinkRow extends ChangeRow {
  kafka_partition: number;
  kafka_offset: string;
  /** The original record (absent for rows built elsewhere, e.g. tests). */
  source?: SourceRecord;
  /** `dead_letters.id` of a replayed row: marked replayed in the transaction that writes it. */
  dead_letter_id?: string;
}

/** A record that could not become a row: kept with its original bytes and the reason. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  reason: string;
  error: string;
}

/** What one write did. */
export interface WriteResult {
  inserted: number;
  duplicates: number;
  deadLettered: DeadLetter[];
  /** Rows inserted per Kafka partition (`kafka_partition`); partitions with none are absent. */
  byPartition: Map<number, number>;
}

/** Writes batches into PostgreSQL. */
export interface Sink {
  /** Writes rows and dead letters in one transaction; resolves after commit. */
  write(rows: SinkRow[], deadLetters?: DeadLetter[]): Promise<WriteResult>;
  /** Closes the pool the sink opened itself (when given a factory). */
  close(): Promise<void>;
}

/** Publishes dead letters elsewhere (the DLQ topic); resolves once they are durable there. */
export interface DeadLetterPublisher {
  publish(deadLetters: DeadLetter[]): Promise<void>;
}

/** Options for {@linkcode createSink}. */
export interface SinkOptions {
  log: Logger;
  /**
   * Called with each dead letter before the transaction that stores it commits, so a crash can
   * repeat a published dead letter but never lose one. Each dead letter is published once per
   * `write` call, even when the write is retried inside it.
   */
  deadLetters?: DeadLetterPublisher;
  /**
   * A write transaction (COPY + merge + commit) that takes longer fails and is retried on a new
   * pool; it is also each session's statement_timeout, so a statement stuck on a lock is
   * cancelled. A batch the direct COPY was refused for is written again in a transaction with
   * a limit of its own, so one `write` can take up to twice this.
   */
  writeTimeoutMs?: number;
  /** REDACT_DELETED_PAGES: a deleted page's rows also lose their comment, user and sha1. */
  redactDeletedPages?: boolean;
  /** Adds the COPY, merge and commit milliseconds of each write. */
  times?: StageTimes;
  /**
   * Try a batch of new rows as one COPY straight into the table before staging and merging it
   * (default true). False always stages and merges: the tests compare the two.
   */
  directCopy?: boolean;
}

/** Writes that stage and merge without trying the direct COPY, after it was refused. */
const MERGE_AFTER_REFUSAL = 16;

/** The direct COPY was refused (a row already there, bad data, the retention horizon). */
class DirectRefused extends Error {
  constructor(readonly reason: unknown) {
    super("direct COPY refused", { cause: reason });
  }
}

/**
 * Creates the sink. Only a row PostgreSQL rejects for its data (SQLSTATE class 22 or 23) is
 * isolated by bisecting and dead-lettered; any other error (a lock timeout, a revoked grant, a
 * missing column, a read-only or unreachable server) is thrown for the caller to retry, and
 * dead-letters nothing. Given a pool factory, the sink owns its pool and replaces it after a
 * connection failure or a write timeout (see {@linkcode OwnedPool}).
 */
export function createSink(db: Sql | PoolFactory, options: SinkOptions): Sink {
  return new PostgresSink(db, options);
}

/** The sink: a pool (its own or the caller's), dead letters published once, bisect on bad data. */
class PostgresSink implements Sink {
  readonly #pool: OwnedPool | undefined;
  readonly #shared: Sql | undefined;
  readonly #options: SinkOptions;
  readonly #timeoutMs: number;
  readonly #published = new WeakSet<DeadLetter>();
  readonly #months = new MonthPartitions();
  /** Errors raised by the dead-letter publisher: Kafka's, never a reason to replace the pool. */
  readonly #publishErrors = new WeakSet<object>();
  /** Writes left that merge without trying the direct COPY (a redelivery comes in runs). */
  #mergeOnly = 0;

  constructor(db: Sql | PoolFactory, options: SinkOptions) {
    this.#options = options;
    this.#timeoutMs = options.writeTimeoutMs ?? 120_000;
    if ("begin" in db) this.#shared = db as Sql;
    else {
      this.#pool = new OwnedPool(db as PoolFactory, {
        statementTimeoutMs: this.#timeoutMs,
        log: options.log,
      });
    }
  }

  async write(
    rows: SinkRow[],
    deadLetters: DeadLetter[] = [],
  ): Promise<WriteResult> {
    await this.#ensurePartitions(rows);
    try {
      const byPartition = await this.#writeOnce(rows, deadLetters);
      const inserted = sum(byPartition);
      return {
        inserted,
        duplicates: rows.length - inserted,
        deadLettered: deadLetters,
        byPartition,
      };
    } catch (err) {
      if (isRowError(err) && rows.length > 0) {
        return await this.#bisect(rows, deadLetters, err);
      }
      if (
        !this.#publishErrors.has(err as object) && isConnectionFailure(err) &&
        (err as { code?: unknown })?.code !== "POOL_REPLACED"
      ) {
        this.#pool?.replace(errorCode(err));
      }
      throw err;
    }
  }

  /** A month seen for the first time gets its partition before its rows are written. */
  async #ensurePartitions(rows: SinkRow[]): Promise<void> {
    try {
      await this.#months.ensure(this.#sql, rows.map((r) => r.event_time));
    } catch (err) {
      if (isConnectionFailure(err)) this.#pool?.replace(errorCode(err));
      throw err; // never a data error: rows stay untouched until their month exists
    }
  }

  async close(): Promise<void> {
    await this.#pool?.end();
  }

  get #sql(): Sql {
    return this.#pool?.sql ?? this.#shared!;
  }

  /** A row PostgreSQL rejects (bad data) must not stall the partition: bisect to find it. */
  async #bisect(
    rows: SinkRow[],
    deadLetters: DeadLetter[],
    err: unknown,
  ): Promise<WriteResult> {
    if (rows.length === 1) {
      return await this.#deadLetterRow(rows[0]!, deadLetters, err);
    }
    const mid = Math.ceil(rows.length / 2);
    const a = await this.write(rows.slice(0, mid), deadLetters);
    const b = await this.write(rows.slice(mid));
    const byPartition = new Map(a.byPartition);
    for (const [p, n] of b.byPartition) {
      byPartition.set(p, (byPartition.get(p) ?? 0) + n);
    }
    return {
      inserted: a.inserted + b.inserted,
      duplicates: a.duplicates + b.duplicates,
      deadLettered: [...a.deadLettered, ...b.deadLettered],
      byPartition,
    };
  }

  /** Stores the one rejected row as a dead letter, with the batch's own dead letters. */
  async #deadLetterRow(
    row: SinkRow,
    deadLetters: DeadLetter[],
    err: unknown,
  ): Promise<WriteResult> {
    const dl = rowDeadLetter(row, err);
    this.#options.log.warn("row rejected by database, dead-lettered", {
      rcid: row.rcid,
      err,
    });
    await this.write([], [...deadLetters, dl]);
    return {
      inserted: 0,
      duplicates: 0,
      deadLettered: [...deadLetters, dl],
      byPartition: new Map(),
    };
  }

  /**
   * Publishes the new dead letters, then writes everything in one transaction: directly when the
   * rows look new, and staged and merged when the database refuses that (in a new transaction).
   */
  async #writeOnce(
    rows: SinkRow[],
    deadLetters: DeadLetter[],
  ): Promise<Map<number, number>> {
    await this.#publishOnce(deadLetters);
    const earliest = this.#options.directCopy !== false &&
        this.#mergeOnly === 0
      ? directEarliest(rows)
      : null;
    if (earliest === null) {
      this.#mergeOnly = Math.max(0, this.#mergeOnly - 1);
      return await this.#transaction(rows, deadLetters, null);
    }
    try {
      return await this.#transaction(rows, deadLetters, earliest);
    } catch (err) {
      if (!(err instanceof DirectRefused)) throw err;
      this.#mergeOnly = MERGE_AFTER_REFUSAL;
      return await this.#transaction(rows, deadLetters, null);
    }
  }

  /** One write transaction; given the rows' earliest event time, the direct COPY. */
  async #transaction(
    rows: SinkRow[],
    deadLetters: DeadLetter[],
    earliest: string | null,
  ): Promise<Map<number, number>> {
    const times = this.#options.times;
    const t0 = performance.now();
    let inTx = 0;
    const inserted = await withTimeout(
      this.#timeoutMs,
      this.#sql.begin(async (tx) => {
        const t = performance.now();
        const n = await writeTransaction(
          tx,
          rows,
          deadLetters,
          {
            redactDeletedPages: this.#options.redactDeletedPages ?? false,
          },
          earliest,
          times,
        );
        inTx = performance.now() - t;
        return n;
      }),
      this.#pool?.signal,
    );
    if (times) times.db_commit += performance.now() - t0 - inTx;
    return inserted;
  }

  /** Publishes each dead letter once per sink, however often its write is retried. */
  async #publishOnce(deadLetters: DeadLetter[]): Promise<void> {
    const fresh = deadLetters.filter((d) => !this.#published.has(d));
    if (fresh.length === 0 || !this.#options.deadLetters) return;
    try {
      await this.#options.deadLetters.publish(fresh);
    } catch (err) {
      if (err && typeof err === "object") this.#publishErrors.add(err);
      throw err;
    }
    for (const d of fresh) this.#published.add(d);
  }
}

/**
 * One write: the rows (COPYed straight in, or COPYed into staging and merged), the dead letters,
 * and the replayed dead letters these rows came from marked (a rejected row's write rolls back,
 * mark included).
 */
async function writeTransaction(
  tx: Transaction,
  rows: SinkRow[],
  deadLetters: DeadLetter[],
  redaction: RedactionOptions,
  earliest: string | null,
  times?: StageTimes,
): Promise<Map<number, number>> {
  let inserted = new Map<number, number>();
  if (rows.length > 0) {
    inserted = earliest !== null
      ? await copyDirect(tx, rows, earliest, redaction, times)
      : await copyAndMerge(tx, rows, redaction, times);
  }
  if (deadLetters.length > 0) await insertDeadLetters(tx, deadLetters);
  await markReplayed(tx, rows);
  return inserted;
}

/**
 * COPYs rows that look new (see `directEarliest`) straight into wiki_recent_changes, adds
 * them to the rollups as counted by the client, then applies redactions. Throws DirectRefused,
 * which rolls the transaction back, when the database refuses a row (one already there, bad
 * data) or a row is below the retention horizon: the write is then staged and merged.
 */
async function copyDirect(
  tx: Transaction,
  rows: SinkRow[],
  earliest: string,
  redaction: RedactionOptions,
  times?: StageTimes,
): Promise<Map<number, number>> {
  const t0 = performance.now();
  // Held shared until commit: a merge (exclusive, see copyAndMerge) waits for this write, and
  // retention (exclusive) never drops a partition under it. Always this order (no deadlock).
  // The check, sent with it (one round trip), is a statement of its own: its snapshot is taken
  // after the locks were granted.
  const [, [h]] = await pipelined([
    tx.unsafe(`select pg_advisory_xact_lock_shared(${MERGE_LOCK}),
      pg_advisory_xact_lock_shared(${RETENTION_LOCK})`),
    tx<{ below: boolean }[]>`
      select retained_from > ${earliest}::timestamptz as below from wiki_history_state`,
  ]);
  if (h?.below !== false) {
    throw new DirectRefused("below the retention horizon");
  }
  try {
    await copyIn(
      tx,
      `copy wiki_recent_changes (${COLUMNS.join(", ")}) from stdin`,
      copyChunks(rows),
    );
  } catch (err) {
    if (isConnectionFailure(err)) throw err;
    throw new DirectRefused(err);
  }
  const t1 = performance.now();
  await applyRedactions(tx, rows, redaction, [
    tx.unsafe(ROLLUP_SQL, [activityJson(rows)], { prepare: true }),
  ]);
  if (times) {
    times.copy += t1 - t0;
    times.merge += performance.now() - t1;
  }
  const inserted = new Map<number, number>();
  for (const r of rows) {
    inserted.set(r.kafka_partition, (inserted.get(r.kafka_partition) ?? 0) + 1);
  }
  return inserted;
}

/**
 * COPYs the rows into the text staging table, merges them copy by copy (one change from two
 * sources), then applies redactions; returns the rows inserted per Kafka partition.
 */
async function copyAndMerge(
  tx: Transaction,
  rows: SinkRow[],
  redaction: RedactionOptions,
  times?: StageTimes,
): Promise<Map<number, number>> {
  const t0 = performance.now();
  // Exclusive until commit: no other write is in flight while this one merges, so the fill-in of
  // a change already there (written by another write, this process's or another's) sees that
  // row committed. Taken before the retention lock, as the direct write takes both.
  await tx.unsafe(`select pg_advisory_xact_lock(${MERGE_LOCK})`);
  await tx.unsafe(
    `create temp table if not exists wikistream_stage_text (${STAGE_DDL})
             on commit delete rows`,
  );
  const copies = copyNumbers(rows);
  await copyIn(
    tx,
    `copy pg_temp.wikistream_stage_text (${
      COLUMNS.join(", ")
    }, copy_no) from stdin`,
    copyChunks(rows, copies),
  );
  const t1 = performance.now();
  // Held shared until commit: retention (exclusive) never drops a partition under this write.
  await tx.unsafe(`select pg_advisory_xact_lock_shared(${RETENTION_LOCK})`);
  const inserted = new Map<number, number>();
  const maxCopy = copies.reduce((a, b) => (b > a ? b : a), 0);
  for (let copy = 1; copy <= maxCopy; copy++) {
    // Prepared (once per session): its plan over every partition costs more than a small batch.
    const counts = await tx.unsafe(MERGE_SQL, [copy], { prepare: true });
    for (const { kafka_partition: p, inserted: n } of counts) {
      inserted.set(p, (inserted.get(p) ?? 0) + n);
    }
  }
  await applyRedactions(tx, rows, redaction);
  if (times) {
    times.copy += t1 - t0;
    times.merge += performance.now() - t1;
  }
  return inserted;
}

/** Rejects with a retriable WRITE_TIMEOUT error after `ms`, or with the reason of `abandon`. */
function withTimeout<T>(
  ms: number,
  p: Promise<T>,
  abandon?: AbortSignal,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = Object.assign(
        new Error(`Database write timed out after ${ms} ms`),
        { code: "WRITE_TIMEOUT", retriable: true },
      );
      reject(err);
    }, ms);
    onAbort = () => reject(abandon!.reason);
    if (abandon?.aborted) onAbort();
    else abandon?.addEventListener("abort", onAbort, { once: true });
  });
  p.catch(() => {}); // a timed-out write may still reject later
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
    if (onAbort) abandon?.removeEventListener("abort", onAbort);
  });
}

/** Anything but an error PostgreSQL itself answered on a live connection (class 08/57 aside). */
function isConnectionFailure(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown };
  if (e?.name !== "PostgresError") return true;
  return typeof e.code === "string" && /^(08|57)/.test(e.code);
}

function sum(counts: Map<number, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown };
  return String(e?.code ?? e?.name ?? "unknown");
}
