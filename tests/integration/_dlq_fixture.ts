/** @module Shared by the dlq:replay tests: rejected recorded rows plus a poison record, the task as a subprocess. */
import type { ReplaySummary } from "../../lib/pipeline/dlq_replay.ts";
import { Buffer } from "node:buffer";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import type { Config } from "../../lib/core/config.ts";
import type { Sql } from "../../lib/sink/db.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import { captureLogger } from "../_helpers.ts";
import { taskArgs } from "../_task.ts";
import { publishRecords, type ReplayedRecord } from "./_consumer_fixture.ts";

/** A bad deploy: a constraint that the recorded log rows violate (23514, a row error). */
export const NO_LOG_ROWS =
  "alter table wiki_recent_changes add constraint ws_test_no_log check (change_type <> 'log')";
export const FIX =
  "alter table wiki_recent_changes drop constraint ws_test_no_log";

export function isLogRow(r: ReplayedRecord): boolean {
  return (JSON.parse(r.value) as Envelope).row.type === "log";
}

/** Runs `deno task dlq:replay <args>` as the task runs it (scoped permissions); exit code and summary. */
export async function replayTask(
  url: string,
  args: string[],
): Promise<{ code: number; summary?: ReplaySummary; stderr: string }> {
  const env = { DATABASE_URL: url, LOG_LEVEL: "warn", LOG_FORMAT: "json" };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs("dlq:replay", env)), ...args],
    cwd: new URL("../../", import.meta.url),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n")
    .filter(Boolean);
  return {
    code: out.code,
    summary: lines.length > 0 ? JSON.parse(lines.at(-1)!) : undefined,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Consumes the topic into the database until caught up and idle. */
export async function consumeAll(config: Config): Promise<void> {
  const consumer = await startConsumer(config, {
    log: captureLogger("error"),
    signal: new AbortController().signal,
    idleExitMs: 1500,
  });
  try {
    await consumer.done;
  } finally {
    await consumer.close();
  }
}

/** Records in the DLQ topic so far (sum of its partitions' end offsets). */
export async function dlqEnd(kafka: Kafka, topic: string): Promise<bigint> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topicNames(topic).dlq);
    return offsets.reduce((n, p) => n + BigInt(p.high), 0n);
  } finally {
    await admin.disconnect();
  }
}

/** Every dead letter: id, reason, whether it is marked replayed, offset. */
export async function letters(sql: Sql): Promise<Letter[]> {
  return await sql<
    Letter[]
  >`select id::text as id, reason, replayed_at is not null as replayed,
      "offset"::text as offset from dead_letters order by id`;
}

/** One row of `dead_letters`, as the tests look at it. */
export interface Letter {
  id: string;
  reason: string;
  replayed: boolean;
  offset: string;
}

/** The recorded rows with their log rows rejected by the database, plus one poison record. */
export async function setUp(
  config: Config,
  sql: Sql,
  records: ReplayedRecord[],
) {
  await migrate(sql);
  await sql.unsafe(NO_LOG_ROWS);
  const log = captureLogger("error");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const half = Math.floor(records.length / 2);
  await publishRecords(kafka, config.KAFKA_TOPIC, records.slice(0, half), {
    log,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic: config.KAFKA_TOPIC,
      messages: [{
        key: "poison",
        value: Buffer.from("{not json"),
        headers: { origin: "test" },
      }],
    });
  } finally {
    await producer.disconnect();
  }
  await publishRecords(kafka, config.KAFKA_TOPIC, records.slice(half), { log });
  await consumeAll(config);
  return kafka;
}
