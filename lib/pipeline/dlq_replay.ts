/**
 * @module `deno task dlq:replay`: puts dead letters back through the sink after a fix, decoded as
 * the consumer decodes them, and marks each one written (or already present) replayed in the
 * transaction that writes its row.
 */
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { retry } from "../core/retry.ts";
import type { InRecord } from "../kafka/client.ts";
import { decodeBatch } from "../sink/batch_handler.ts";
import { connectDb, type Sql } from "../sink/db.ts";
import {
  countDeadLetters,
  type DeadLetterFilter,
  lastDeadLetterId,
  selectDeadLetters,
  type StoredDeadLetter,
} from "../sink/dead_letter_rows.ts";
import { migrate } from "../sink/migrate.ts";
import { createSink, type Sink } from "../sink/sink.ts";

/** Options for {@linkcode runDlqReplay}: the selection, then where output and logs go. */
export interface ReplayOptions {
  reasons?: string[];
  since?: string;
  until?: string;
  limit?: number;
  dryRun?: boolean;
  includeReplayed?: boolean;
  log: Logger;
  signal: AbortSignal;
  /** Where the JSON summary line goes. */
  print: (line: string) => void;
  /** Dead letters read and written per transaction (default 500). */
  chunk?: number;
  /** PostgreSQL schema (tests). */
  schema?: string;
}

/** The summary line: what was selected and, unless a dry run, what became of it. */
export interface ReplaySummary {
  dry_run: boolean;
  selected: number;
  /** The selection by stored reason. */
  selected_by_reason: Record<string, number>;
  /** Rows newly inserted. */
  written?: number;
  /** Rows already in the table (written by the consumer, another replay, or a rerun). */
  duplicates?: number;
  /** Dead letters marked replayed by this run (written + duplicates). */
  replayed?: number;
  still_failing?: number;
  /** What still fails, by today's reason (a decode reason, or `database_rejected`). */
  still_failing_by_reason?: Record<string, number>;
  /** The first 20 dead letter ids that still fail. */
  still_failing_ids?: string[];
  /** Set when the run stopped early: what it had committed is counted above. */
  interrupted?: boolean;
  error?: string;
}

const DEFAULT_CHUNK = 500;
const SHOWN = 20;

/**
 * Replays the selected dead letters in id order, chunk by chunk; each chunk is one sink write
 * (bisected when PostgreSQL still rejects a row, which then stays unmarked and gets no second
 * dead letter). Nothing is published to Kafka. Only dead letters that existed when the run
 * started are selected. Prints and returns the summary.
 */
export async function runDlqReplay(
  config: Config,
  options: ReplayOptions,
): Promise<ReplaySummary> {
  const log = options.log.with({ component: "dlq-replay" });
  const sql = connectDb(config.DATABASE_URL, {
    max: 1,
    ...(options.schema ? { schema: options.schema } : {}),
  });
  try {
    await migrate(sql, { log });
    const filter: DeadLetterFilter = {
      reasons: options.reasons,
      since: options.since,
      until: options.until,
      includeReplayed: options.includeReplayed,
      maxId: await lastDeadLetterId(sql),
    };
    if (options.dryRun) {
      const summary = dryRun(
        await countDeadLetters(sql, filter, options.limit),
      );
      options.print(JSON.stringify(summary));
      return summary;
    }
    const tally = new Tally();
    try {
      await replayAll(config, sql, filter, tally, { ...options, log });
    } catch (err) {
      // What this run committed before it stopped, so the operator knows what is done.
      options.print(JSON.stringify({
        ...tally.summary,
        ...(options.signal.aborted ? { interrupted: true } : {}),
        error: (err as Error)?.message ?? String(err),
      }));
      throw err;
    }
    const summary = tally.summary;
    options.print(JSON.stringify(summary));
    log.info("dlq replay finished", { ...summary });
    return summary;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function dryRun(byReason: Record<string, number>): ReplaySummary {
  const selected = Object.values(byReason).reduce((a, b) => a + b, 0);
  return { dry_run: true, selected, selected_by_reason: byReason };
}

/** Pages through the selection by id and replays each page through one sink. */
async function replayAll(
  config: Config,
  sql: Sql,
  filter: DeadLetterFilter,
  tally: Tally,
  options: ReplayOptions,
): Promise<void> {
  const sink = createSink(
    (session) =>
      connectDb(config.DATABASE_URL, {
        max: 2,
        ...(options.schema ? { schema: options.schema } : {}),
        ...session,
      }),
    // No dead-letter publisher: a row still rejected is already in the table and the topic.
    { log: options.log, redactDeletedPages: config.REDACT_DELETED_PAGES },
  );
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  try {
    let afterId = "0";
    for (;;) {
      options.signal.throwIfAborted();
      const left = (options.limit ?? Infinity) - tally.summary.selected;
      const page = Math.min(chunk, left);
      if (page <= 0) break;
      const letters = await selectDeadLetters(sql, filter, {
        afterId,
        limit: page,
      });
      if (letters.length === 0) break;
      afterId = letters.at(-1)!.id;
      await replayChunk(sink, letters, tally, options);
      await countUnstored(sql, letters, tally, options.log);
    }
  } finally {
    await sink.close();
  }
}

/** Decodes one page as the consumer would, writes what decodes, and counts the outcome. */
async function replayChunk(
  sink: Sink,
  letters: StoredDeadLetter[],
  tally: Tally,
  options: ReplayOptions,
): Promise<void> {
  const ids = new Map(letters.map((l) => [letterKey(l), l.id]));
  const { rows, deadLetters: undecodable } = decodeBatch({
    topic: "dead_letters",
    partition: -1,
    records: letters.map(asRecord),
    highWatermark: "0",
  });
  for (const row of rows) {
    row.dead_letter_id = ids.get(letterKey({
      topic: row.source!.topic,
      partition: row.kafka_partition,
      offset: row.kafka_offset,
    }));
  }
  const result = rows.length === 0
    ? { inserted: 0, duplicates: 0, deadLettered: [] }
    : await retry(() => sink.write(rows), {
      maxAttempts: 6,
      minTimeout: 500,
      maxTimeout: 10_000,
      signal: options.signal,
      onRetry: (err, attempt, delayMs) =>
        options.log.warn("database write failed, retrying", {
          err,
          attempt,
          delay_ms: delayMs,
        }),
    });
  tally.add(letters, result);
  for (const d of [...result.deadLettered, ...undecodable]) {
    const id = ids.get(letterKey(d))!;
    if (tally.fail(id, d.reason)) {
      options.log.warn("dead letter still fails", {
        id,
        reason: d.reason,
        error: d.error,
      });
    }
  }
}

/**
 * The chunk's letters the write counted as duplicates that are not in the table after all (the
 * merge refuses rows below the retention horizon): still failing, as `below_retention`, and left
 * unmarked by the sink.
 */
async function countUnstored(
  sql: Sql,
  letters: StoredDeadLetter[],
  tally: Tally,
  log: Logger,
): Promise<void> {
  const ids = letters.map((l) => l.id);
  const unstored = await sql<{ id: string }[]>`
    select id::text from dead_letters
    where id = any(${ids}::bigint[]) and replayed_at is null
      and id::text <> all(${tally.failedIn(ids)}::text[])`;
  for (const { id } of unstored) {
    tally.unstored();
    if (tally.fail(id, "below_retention")) {
      log.warn(
        "dead letter not stored: its row is below the retention horizon",
        {
          id,
        },
      );
    }
  }
}

/** A stored dead letter as the Kafka record it was: the dlq.* headers taken off. */
function asRecord(l: StoredDeadLetter): InRecord {
  const headers = Object.fromEntries(
    Object.entries(l.headers).filter(([k]) => !k.startsWith("dlq.")),
  );
  return {
    topic: l.topic,
    partition: l.partition,
    offset: l.offset,
    key: l.key,
    value: l.value,
    headers,
    timestamp: l.headers["dlq.source_timestamp"] ?? "",
  };
}

/** Where a record was read: its dead letter's unique key. */
function letterKey(d: { topic: string; partition: number; offset: string }) {
  return `${d.partition}:${d.offset}:${d.topic}`;
}

/** The running counts of a replay. */
class Tally {
  readonly #failed = new Set<string>();
  readonly summary = {
    dry_run: false,
    selected: 0,
    selected_by_reason: {} as Record<string, number>,
    written: 0,
    duplicates: 0,
    replayed: 0,
    still_failing: 0,
    still_failing_by_reason: {} as Record<string, number>,
    still_failing_ids: [] as string[],
  } satisfies ReplaySummary;

  add(
    letters: StoredDeadLetter[],
    result: { inserted: number; duplicates: number },
  ): void {
    const s = this.summary;
    s.selected += letters.length;
    for (const l of letters) bump(s.selected_by_reason, l.reason);
    s.written += result.inserted;
    s.duplicates += result.duplicates;
    s.replayed += result.inserted + result.duplicates;
  }

  /** A letter the write counted as a duplicate whose row was refused: not replayed after all. */
  unstored(): void {
    this.summary.duplicates--;
    this.summary.replayed--;
  }

  /** Of `ids`, the ones already counted as still failing. */
  failedIn(ids: string[]): string[] {
    return ids.filter((id) => this.#failed.has(id));
  }

  /** Counts one dead letter that still fails; true for the first few (worth a log line). */
  fail(id: string, reason: string): boolean {
    const s = this.summary;
    this.#failed.add(id);
    s.still_failing++;
    bump(s.still_failing_by_reason, reason);
    if (s.still_failing_ids.length >= SHOWN) return false;
    s.still_failing_ids.push(id);
    return true;
  }
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
