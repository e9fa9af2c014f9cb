/** @module Turns a Kafka batch into one durable sink write: decode, dead-letter, write with retry. */
import { type ParsedValue, parseValue, validateValue } from "./decode.ts";
import { DecodeError } from "../core/errors.ts";
import type { BatchContext, RecordBatch } from "../kafka/batch_consumer.ts";
import type { InRecord } from "../kafka/client.ts";
import { newStageTimes, type StageTimes } from "../core/stage_times.ts";
import type { Logger } from "../core/log.ts";
import { retry } from "../core/retry.ts";
import type { DeadLetter, Sink, SinkRow } from "./sink.ts";
import { deadLetterHeaders, storable } from "./_dead_letter.ts";
import { AheadEncoder } from "./copy.ts";
import { setImmediate } from "node:timers";

/** Counters the consumer bumps (metrics read them). */
export interface ConsumerStats {
  consumed: number;
  written: number;
  duplicates: number;
  deadLettered: number;
  batches: number;
  dbErrors: number;
  /** Failed write attempts by SQLSTATE (or error code/name when not from PostgreSQL). */
  dbErrorsByCode: Record<string, number>;
  /** The last failed write while no write has succeeded since; undefined once one succeeds. */
  dbFailing?: { code: string; message: string; since: number };
  lastBatchMs: number;
  lastEventMs: number;
  /** Where the time went, per stage (the sink and the batch consumer add theirs). */
  stages: StageTimes;
  /** Records retention deleted before they were written (set by the consumer). */
  retention?: { readonly total: bigint };
}

/** A batch decoded into rows and dead letters. */
type Decoded = ReturnType<typeof decodeBatch>;

/** Records decoded between two turns of the event loop (see `decodeInSlices`). */
const SLICE = 64;

/**
 * Writes a batch (`runBatchConsumer`'s `handle`); `prepare` decodes one ahead of time (its
 * `prepare`), so decoding overlaps the write in flight.
 */
export interface BatchHandler {
  (batch: RecordBatch, ctx: BatchContext): Promise<void>;
  prepare(batch: RecordBatch): void;
}

/** Options for {@linkcode createBatchHandler}. */
export interface BatchHandlerOptions {
  sink: Sink;
  log: Logger;
  signal: AbortSignal;
  stats?: ConsumerStats;
  now?: () => number;
  /** Told after a failed write attempt (false) and after each successful write (true). */
  onWrite?(ok: boolean): void;
}

/** Fresh zeroed counters. */
export function newConsumerStats(): ConsumerStats {
  return {
    consumed: 0,
    written: 0,
    duplicates: 0,
    deadLettered: 0,
    batches: 0,
    dbErrors: 0,
    dbErrorsByCode: {},
    lastBatchMs: 0,
    lastEventMs: 0,
    stages: newStageTimes(),
  };
}

/**
 * Splits a batch into rows and dead letters; never throws on bad input. Parses every value
 * first, then validates them, then encodes the rows' COPY lines, adding each phase's
 * milliseconds to `times` when given.
 */
export function decodeBatch(
  batch: RecordBatch,
  receivedAt = new Date(),
  times?: StageTimes,
  encoder: AheadEncoder = new AheadEncoder(),
): { rows: SinkRow[]; deadLetters: DeadLetter[] } {
  const deadLetters: DeadLetter[] = [];
  const t0 = performance.now();
  const parsed: (ParsedValue | undefined)[] = batch.records.map((r) => {
    try {
      return parseValue(r.value);
    } catch (err) {
      deadLetters.push(toDeadLetter(r, err, receivedAt));
      return undefined;
    }
  });
  const t1 = performance.now();
  const rows: SinkRow[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i];
    if (p === undefined) continue;
    const r = batch.records[i]!;
    try {
      const row = validateValue(p) as SinkRow;
      row.kafka_partition = r.partition;
      row.kafka_offset = r.offset;
      // The original record, so a row PostgreSQL rejects dead-letters as it came (no copy).
      row.source = r;
      rows.push(row);
    } catch (err) {
      deadLetters.push(toDeadLetter(r, err, receivedAt));
    }
  }
  const t2 = performance.now();
  encoder.encode(rows);
  if (times) {
    times.decode += t1 - t0;
    times.validate += t2 - t1;
    times.encode += performance.now() - t2;
  }
  if (deadLetters.length > 1) {
    deadLetters.sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)));
  }
  return { rows, deadLetters };
}

/**
 * {@linkcode decodeBatch} in slices of SLICE records, yielding to the event loop between them:
 * decoding a whole fetch at once holds the only JavaScript thread for tens of milliseconds, and
 * every PostgreSQL reply of the write in flight (each statement of the transaction waits for
 * one) would wait that long. Same result, in the same order.
 */
export async function decodeInSlices(
  batch: RecordBatch,
  receivedAt = new Date(),
  times?: StageTimes,
): Promise<Decoded> {
  const rows: SinkRow[] = [];
  const deadLetters: DeadLetter[] = [];
  const encoder = new AheadEncoder();
  for (let i = 0; i < batch.records.length; i += SLICE) {
    if (i > 0) await nextTurn();
    const part = decodeBatch(
      { ...batch, records: batch.records.slice(i, i + SLICE) },
      receivedAt,
      times,
      encoder,
    );
    rows.push(...part.rows);
    deadLetters.push(...part.deadLetters);
  }
  return { rows, deadLetters };
}

/** Resolves after the event loop has handled what is pending (I/O included). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A record that could not be decoded, as a dead letter with its reason headers. */
function toDeadLetter(
  r: InRecord,
  err: unknown,
  receivedAt: Date,
): DeadLetter {
  const reason = err instanceof DecodeError ? err.reason : "decode_failed";
  const error = storable((err as Error).message);
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    key: r.key,
    value: r.value,
    headers: {
      ...r.headers,
      ...deadLetterHeaders({
        reason,
        error,
        topic: r.topic,
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        receivedAt,
      }),
    },
    reason,
    error,
  };
}

/**
 * Returns the handler for `runBatchConsumer`: it resolves only after the batch is committed in
 * PostgreSQL. A database outage is retried with backoff (heartbeating) until it recovers or the
 * consumer stops; the offset is then not committed, so nothing is lost.
 */
export function createBatchHandler(
  options: BatchHandlerOptions,
): BatchHandler {
  const stats = options.stats ?? newConsumerStats();
  const now = options.now ?? Date.now;
  const decoded = new WeakMap<RecordBatch, Promise<Decoded>>();
  const decode = (batch: RecordBatch) =>
    decodeInSlices(batch, new Date(), stats.stages);
  const handle = async (
    batch: RecordBatch,
    ctx: BatchContext,
  ): Promise<void> => {
    const { rows, deadLetters } = await (decoded.get(batch) ?? decode(batch));
    decoded.delete(batch);
    const started = now();
    // Shutdown or a lost partition stops the retries (the batch is then abandoned, uncommitted);
    // a write already under way is finished first.
    const signal = AbortSignal.any([options.signal, ctx.signal]);
    const result = await retry(() => options.sink.write(rows, deadLetters), {
      maxAttempts: Number.POSITIVE_INFINITY,
      minTimeout: 500,
      maxTimeout: 10_000,
      // Bad rows are already isolated by the sink; anything else is the database being unwell.
      isRetriable: () => true,
      signal,
      onRetry: (err, attempt, delayMs) => {
        const code = noteFailure(stats, err, now());
        options.onWrite?.(false);
        // The backoff grows to 10 s, so a lasting fault is logged about every 10 s per partition.
        options.log.warn("database write failed, retrying", {
          err,
          code,
          attempt,
          delay_ms: delayMs,
          partition: batch.partition,
        });
        ctx.heartbeat().catch(() => {});
      },
    });
    options.onWrite?.(true);
    stats.dbFailing = undefined;
    stats.batches++;
    stats.consumed += batch.records.length;
    stats.written += result.inserted;
    stats.duplicates += result.duplicates;
    stats.deadLettered += result.deadLettered.length;
    stats.lastBatchMs = now();
    for (const r of rows) {
      const t = Date.parse(r.event_time);
      if (t > stats.lastEventMs) stats.lastEventMs = t;
    }
    if (result.deadLettered.length > 0) {
      options.log.warn("records dead-lettered", {
        count: result.deadLettered.length,
        reasons: [...new Set(result.deadLettered.map((d) => d.reason))],
        partition: batch.partition,
      });
    }
    options.log.debug("batch written", {
      partition: batch.partition,
      records: batch.records.length,
      inserted: result.inserted,
      duplicates: result.duplicates,
      ms: now() - started,
    });
  };
  return Object.assign(handle, {
    prepare(batch: RecordBatch) {
      decoded.set(batch, decode(batch));
    },
  });
}

/** Counts a failed write by its code and remembers it as the ongoing failure; returns the code. */
function noteFailure(stats: ConsumerStats, err: unknown, at: number): string {
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const code = String(e?.code ?? e?.name ?? "unknown");
  stats.dbErrors++;
  stats.dbErrorsByCode[code] = (stats.dbErrorsByCode[code] ?? 0) + 1;
  stats.dbFailing = {
    code,
    message: String(e?.message ?? err),
    since: stats.dbFailing?.since ?? at,
  };
  return code;
}
