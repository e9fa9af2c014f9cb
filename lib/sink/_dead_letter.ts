/** @module Dead letters of the sink folder: the dlq.* headers, storable text, a rejected row's letter, their SQL. */
import { Buffer } from "node:buffer";
import type { Transaction } from "./db.ts";
import type { DeadLetter, SinkRow } from "./sink.ts";

/** The headers a dead letter carries: why (`dlq.reason`, `dlq.error`), where from, and when. */
export function deadLetterHeaders(d: {
  reason: string;
  error: string;
  topic: string;
  partition: number;
  offset: string;
  timestamp?: string;
  receivedAt: Date;
}): Record<string, string> {
  return {
    "dlq.reason": d.reason,
    "dlq.error": d.error.slice(0, 1000),
    "dlq.source_topic": d.topic,
    "dlq.source_partition": String(d.partition),
    "dlq.source_offset": d.offset,
    ...(d.timestamp ? { "dlq.source_timestamp": d.timestamp } : {}),
    "dlq.received_at": d.receivedAt.toISOString(),
  };
}

/** Text PostgreSQL can store: error texts and headers may hold NUL or lone surrogates. */
export function storable(s: string): string {
  return s.replaceAll("\0", "\\u0000").toWellFormed();
}

/**
 * The dead letter of a row PostgreSQL rejected: the original Kafka record (key, value bytes,
 * headers) when the row carries it, as for a decode failure, plus the dlq.* headers.
 */
export function rowDeadLetter(
  row: SinkRow,
  err: unknown,
  receivedAt = new Date(),
): DeadLetter {
  const e = err as { code?: string; message?: string };
  const error = storable(`${e.code ?? ""} ${e.message ?? String(err)}`.trim());
  const src = row.source;
  const topic = src?.topic ?? "(database)";
  const dlq = deadLetterHeaders({
    reason: "database_rejected",
    error,
    topic,
    partition: row.kafka_partition,
    offset: row.kafka_offset,
    timestamp: src?.timestamp,
    receivedAt,
  });
  return {
    topic,
    partition: row.kafka_partition,
    offset: row.kafka_offset,
    key: src ? src.key : null,
    value: src ? src.value : new TextEncoder().encode(JSON.stringify(row.raw)),
    headers: src
      ? { ...src.headers, ...dlq }
      : { wiki: row.wiki, rcid: row.rcid, ...dlq },
    reason: "database_rejected",
    error,
  };
}

/** Stores dead letters; a replayed one (same topic, partition, offset) is stored once. */
export async function insertDeadLetters(
  tx: Transaction,
  deadLetters: DeadLetter[],
): Promise<void> {
  await tx`insert into dead_letters ${
    tx(deadLetters.map((d) => ({
      topic: storable(d.topic),
      partition: d.partition,
      offset: d.offset,
      key: d.key ? Buffer.from(d.key) : null,
      value: d.value ? Buffer.from(d.value) : null,
      headers: Object.fromEntries(
        Object.entries(d.headers).map((
          [k, v],
        ) => [storable(k), storable(v)]),
      ) as never,
      reason: storable(d.reason),
      error: storable(d.error),
    })))
  } on conflict (topic, partition, "offset") do nothing`;
}

/**
 * Marks the dead letters the rows were replayed from (the first replay's time is kept), each only
 * if its row is now in the table: a row the merge refused (below the retention horizon) leaves
 * its dead letter unmarked.
 */
export async function markReplayed(
  tx: Transaction,
  rows: SinkRow[],
): Promise<void> {
  const replayed = rows.filter((r) => r.dead_letter_id);
  if (replayed.length === 0) return;
  await tx`update dead_letters d set replayed_at = now()
    from unnest(${replayed.map((r) => r.dead_letter_id!)}::bigint[],
      ${replayed.map((r) => r.wiki)}::text[], ${
    replayed.map((r) => r.rcid)
  }::bigint[],
      ${
    replayed.map((r) => r.event_time)
  }::timestamptz[]) as r(id, wiki, rcid, event_time)
    where d.id = r.id and d.replayed_at is null
      and exists (select from wiki_recent_changes w
        where w.wiki = r.wiki and w.rcid = r.rcid and w.event_time = r.event_time)`;
}
