/** @module Bench set-up: fills a topic with replayed recorded rows, times the raw COPY ceiling, deletes topics. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decodeValue } from "../lib/sink/decode.ts";
import type { Kafka } from "../lib/kafka/client.ts";
import type { Logger } from "../lib/core/log.ts";
import { COLUMNS, copyChunks } from "../lib/sink/copy.ts";
import type { SinkRow } from "../lib/sink/sink.ts";
import type { Sql } from "../lib/sink/db.ts";
import { createTransactionalPublisher } from "../lib/kafka/publisher.ts";
import { ensureTopics } from "../lib/kafka/topics.ts";
import {
  type ReplayedRecord,
  replayedRecords,
} from "../tests/integration/_consumer_fixture.ts";
import { loadAverage } from "./_proc.ts";

/** What filling and the ceiling need. */
export interface FillOptions {
  rows: number;
  partitions: number;
  log: Logger;
  say: (line: string) => void;
  /** The record value to publish for a replayed record (default: its envelope). */
  toValue?: (r: ReplayedRecord) => string;
  /** Records per transaction (default 2000; a partition's batch must stay under 1 MB). */
  chunk?: number;
}

/** Rows per transaction when filling the topic, and per COPY segment of the ceiling. */
const CHUNK = 2000;
const SEGMENT = 20_000;

/** Publishes the replayed records to a fresh topic, CHUNK per transaction; returns the ms. */
export async function fillTopic(
  kafka: Kafka,
  topic: string,
  options: FillOptions,
): Promise<number> {
  const t = performance.now();
  await ensureTopics(kafka, [{ topic, partitions: options.partitions }]);
  const publisher = await createTransactionalPublisher(kafka, {
    transactionalId: `fill-${crypto.randomUUID().slice(0, 8)}`,
    log: options.log,
  });
  try {
    const chunk = options.chunk ?? CHUNK;
    for (let i = 0; i < options.rows; i += chunk) {
      const n = Math.min(chunk, options.rows - i);
      await publisher.publish(
        replayedRecords(n, i).map((r) => ({
          topic,
          key: r.key,
          value: options.toValue ? options.toValue(r) : r.value,
          headers: { wiki: r.wiki, rcid: r.rcid },
        })),
      );
    }
  } finally {
    await publisher.disconnect();
  }
  const fillMs = performance.now() - t;
  options.say(
    `filled ${topic}: ${options.rows} rows in ${
      fmtMs(fillMs)
    } (${options.partitions} partitions, transactional)`,
  );
  return fillMs;
}

/**
 * The ceiling: the same rows, decoded beforehand (not timed), COPYed straight into the table in
 * one transaction, SEGMENT rows per COPY (so a million rows need not sit in memory decoded);
 * only the COPYs (encoding included) are timed. Then empties the table. Returns rows per second.
 */
export async function measureCopyCeiling(
  sql: Sql,
  options: FillOptions,
): Promise<number> {
  const enc = new TextEncoder();
  let copyMs = 0;
  await sql.begin(async (tx) => {
    for (let i = 0; i < options.rows; i += SEGMENT) {
      const n = Math.min(SEGMENT, options.rows - i);
      const rows: SinkRow[] = replayedRecords(n, i).map((r, j) => ({
        ...decodeValue(enc.encode(r.value)),
        kafka_partition: 0,
        kafka_offset: String(i + j),
      }));
      const t = performance.now();
      const writable = await tx.unsafe(
        `copy wiki_recent_changes (${COLUMNS.join(", ")}) from stdin`,
      ).writable();
      await pipeline(Readable.from(copyChunks(rows)), writable);
      copyMs += performance.now() - t;
    }
  });
  const copyRate = options.rows / (copyMs / 1000);
  options.say(
    `COPY ceiling: ${options.rows} rows in ${fmtMs(copyMs)} = ${
      Math.round(copyRate)
    } rows/s (COPY into wiki_recent_changes, indexes included; load ${loadAverage()})`,
  );
  await sql`truncate wiki_recent_changes, wiki_activity_minute`;
  await sql`vacuum analyze wiki_recent_changes`;
  return copyRate;
}

function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Deletes a bench topic; a failure is only logged (the figures stand). */
export async function deleteTopic(
  kafka: Kafka,
  topic: string,
  log: Logger,
): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] });
  } catch (err) {
    log.warn("cannot delete the bench topic", { topic, err });
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
