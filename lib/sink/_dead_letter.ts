/** @module Dead letters of the sink folder: the dlq.* headers, storable text, a rejected row's letter. */
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
