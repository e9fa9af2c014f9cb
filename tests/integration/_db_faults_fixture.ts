/** @module Shared by the database-fault tests: a consumer under a fault, steady publishing, dead-letter counts, a role of its own. */
import assert from "node:assert/strict";
import {
  type ConsumerService,
  startConsumer,
} from "../../lib/pipeline/consumer.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import type { Config } from "../../lib/core/config.ts";
import type { Logger } from "../../lib/core/log.ts";
import { adminUrl, withDatabase } from "../_pg_admin.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import {
  assertMatchesSource,
  publishRecords,
  type ReplayedRecord,
  replayedRecords,
} from "./_consumer_fixture.ts";

/** A consumer running against a database that the test is about to break. */
export interface FaultRun {
  config: Config;
  log: ReturnType<typeof captureLogger>;
  kafka: Kafka;
  consumer: ConsumerService;
  /** Rows in wiki_recent_changes, read through `sql`. */
  count(): Promise<number>;
  /** Stops the consumer. */
  close(): Promise<void>;
}

/**
 * Publishes 400 replayed records, starts a consumer on `dbUrl` (topic and group of `base`) and
 * waits until the 400 rows are in the table; `sql` reads the table.
 */
export async function startFaultRun(
  base: Config,
  dbUrl: string,
  sql: Sql,
): Promise<FaultRun> {
  const config = testConfig({
    DATABASE_URL: dbUrl,
    KAFKA_TOPIC: base.KAFKA_TOPIC,
    KAFKA_GROUP_ID: base.KAFKA_GROUP_ID,
  });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  await publishRecords(kafka, config.KAFKA_TOPIC, replayedRecords(400), {
    log,
  });
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    stallMs: 3000,
  });
  const count = async () =>
    (await sql`select count(*)::int as n from wiki_recent_changes`)[0]!
      .n as number;
  const run: FaultRun = {
    config,
    log,
    kafka,
    consumer,
    count,
    async close() {
      controller.abort();
      await consumer.close();
    },
  };
  try {
    await eventually(async () => (await count()) === 400, 60_000);
  } catch (err) {
    await run.close();
    throw err;
  }
  return run;
}

/**
 * Once the fault is gone: every source row arrives, lag drains, no dead letter exists in the
 * table, the DLQ topic or the stats, and the rows and aggregates equal the source's.
 */
export async function assertRecoveredWithoutLoss(
  run: FaultRun,
  sql: Sql,
  source: ReplayedRecord[],
): Promise<void> {
  // Lag first: once every record is consumed and committed, dead letters are final.
  await eventually(
    async () => (await run.consumer.lag()).total_lag === "0",
    120_000,
  );
  const [dl] = await sql`select count(*)::int as n from dead_letters`;
  assert.equal(dl!.n, 0, "no dead letter in the table");
  assert.equal(
    await dlqRecords(run.kafka, run.config.KAFKA_TOPIC),
    0,
    "none in the DLQ topic",
  );
  assert.equal(run.consumer.stats.deadLettered, 0);
  assert.ok(run.consumer.stats.dbErrors > 0, "writes failed and were retried");
  await eventually(async () => (await run.count()) === source.length, 30_000);
  await assertMatchesSource(sql, source);
}

/** Whether a `database write failed, retrying` line names SQLSTATE `code`. */
export function retryLogged(run: FaultRun, code: string): boolean {
  return run.log.lines.some((l) =>
    l.msg === "database write failed, retrying" &&
    JSON.stringify(l).includes(code)
  );
}

/** Whether any log line names `code` (a retry, or a row dead-lettered for it). */
export function faultSeen(run: FaultRun, code: string): boolean {
  return run.log.lines.some((l) => JSON.stringify(l).includes(code));
}

/** Terminates every backend connected to database `name` (the caller's own excepted). */
export async function terminateBackends(root: Sql, name: string) {
  await root`select pg_terminate_backend(pid) from pg_stat_activity
    where datname = ${name} and pid <> pg_backend_pid()`;
}

/** Publishes `total` records in chunks while the test runs; resolves when all are published. */
export async function publishSteadily(
  kafka: Kafka,
  topic: string,
  total: number,
  log: Logger,
): Promise<ReplayedRecord[]> {
  const all = replayedRecords(total);
  for (let i = 0; i < all.length; i += 400) {
    await publishRecords(kafka, topic, all.slice(i, i + 400), { log });
    await new Promise((r) => setTimeout(r, 300));
  }
  return all;
}

/** Records in the dead-letter topic (its end offsets summed; it starts empty). */
export async function dlqRecords(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topicNames(topic).dlq);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** A login role of its own for the consumer, owning the fresh database's public schema. */
export async function appRole(
  dbUrl: string,
): Promise<{ name: string; url: string; admin: Sql } & AsyncDisposable> {
  const name = `app_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const pw = `pw-${crypto.randomUUID().slice(0, 8)}`;
  const dbName = new URL(dbUrl).pathname.slice(1);
  const root = connectDb(await adminUrl(), { max: 1 });
  try {
    await root.unsafe(`create role ${name} login password '${pw}'`);
    await root.unsafe(
      `grant connect, temporary on database ${dbName} to ${name}`,
    );
  } finally {
    await root.end();
  }
  // The superuser inside the database: revokes, grants and reads the role's tables.
  const admin = connectDb(withDatabase(await adminUrl(), dbName), { max: 1 });
  await admin.unsafe(`alter schema public owner to ${name}`);
  const u = new URL(dbUrl);
  u.username = name;
  u.password = pw;
  return {
    name,
    url: u.toString(),
    admin,
    async [Symbol.asyncDispose]() {
      await admin.end({ timeout: 5 });
    },
  };
}

/** Drops a role once the database holding its objects is gone. */
export async function dropRole(name: string): Promise<void> {
  const root = connectDb(await adminUrl(), { max: 1 });
  await root.unsafe(`drop role if exists ${name}`).catch(() => {});
  await root.end();
}
