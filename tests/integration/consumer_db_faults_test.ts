/**
 * PostgreSQL faults that are not about a row, while rows flow: a table locked past `lock_timeout`,
 * a revoked grant. The consumer retries without committing and dead-letters nothing; once the
 * cause goes away every row arrives, once.
 */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import {
  assertMatchesSource,
  freshDatabase,
  publishRecords,
  type ReplayedRecord,
  replayedRecords,
} from "./_consumer_fixture.ts";
import type { Logger } from "../../lib/core/log.ts";
import { renderMetrics } from "../../lib/http/metrics.ts";

/** Publishes `total` records in chunks while the test runs; resolves when all are published. */
async function publishSteadily(
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
async function dlqRecords(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topicNames(topic).dlq);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** A login role for the consumer that owns the fresh database's public schema. */
async function appRole(
  adminUrl: string,
  dbUrl: string,
): Promise<{ name: string; url: string }> {
  const name = `app_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const pw = `pw-${crypto.randomUUID().slice(0, 8)}`;
  const admin = connectDb(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`create role ${name} login password '${pw}'`);
  } finally {
    await admin.end();
  }
  const db = connectDb(dbUrl, { max: 1 });
  try {
    await db.unsafe(`alter schema public owner to ${name}`);
  } finally {
    await db.end();
  }
  const u = new URL(dbUrl);
  u.username = name;
  u.password = pw;
  return { name, url: u.toString() };
}

Deno.test("consumer: the main table locked for 15 s under a 300 ms lock_timeout costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const dbName = new URL(db.url).pathname.slice(1);
  await db.sql.unsafe(`alter database ${dbName} set lock_timeout = '300ms'`);
  const config = testConfig({
    DATABASE_URL: db.url,
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
    (await db.sql`select count(*)::int as n from wiki_recent_changes`)[0]!
      .n as number;
  try {
    await eventually(async () => (await count()) === 400, 60_000);
    const publishing = publishSteadily(kafka, config.KAFKA_TOPIC, 12_000, log);
    const locker = connectDb(db.url, { max: 1 });
    try {
      await locker.begin(async (tx) => {
        await tx`lock table wiki_recent_changes in access exclusive mode`;
        await tx`select pg_sleep(15)`;
      });
    } finally {
      await locker.end();
    }
    assert.ok(consumer.stats.dbErrors > 0, "writes failed and were retried");
    const source = await publishing;
    await eventually(async () => (await count()) === source.length, 120_000);
    await eventually(
      async () => (await consumer.lag()).total_lag === "0",
      30_000,
    );
    const [dl] = await db.sql`select count(*)::int as n from dead_letters`;
    assert.equal(dl!.n, 0, "no dead letter in the table");
    assert.equal(
      await dlqRecords(kafka, config.KAFKA_TOPIC),
      0,
      "none in the DLQ topic",
    );
    assert.equal(consumer.stats.deadLettered, 0);
    assert.ok(
      log.lines.some((l) =>
        l.msg === "database write failed, retrying" &&
        JSON.stringify(l).includes("55P03")
      ),
      "the lock timeout is named in the logs",
    );
    await assertMatchesSource(db.sql, source);
  } finally {
    controller.abort();
    await consumer.close();
  }
});

Deno.test("consumer: a revoked grant, then re-granted, costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const role = await appRole(base.DATABASE_URL, db.url);
  const config = testConfig({
    DATABASE_URL: role.url,
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
    (await db.sql`select count(*)::int as n from wiki_recent_changes`)[0]!
      .n as number;
  try {
    await eventually(async () => (await count()) === 400, 60_000);
    await db.sql.unsafe(
      `revoke insert on wiki_recent_changes from ${role.name}`,
    );
    const publishing = publishSteadily(kafka, config.KAFKA_TOPIC, 4000, log);
    // Unhealthy while writes fail, naming the cause.
    await eventually(() => !consumer.health().ok, 30_000);
    assert.match(consumer.health().reason ?? "", /42501/);
    assert.match(
      await renderMetrics({ consumer: consumer.stats }),
      /wikistream_db_write_errors_total\{code="42501"\} [1-9]/,
    );
    await db.sql.unsafe(`grant insert on wiki_recent_changes to ${role.name}`);
    const source = await publishing;
    await eventually(async () => (await count()) === source.length, 120_000);
    await eventually(
      async () => (await consumer.lag()).total_lag === "0",
      30_000,
    );
    const [dl] = await db.sql`select count(*)::int as n from dead_letters`;
    assert.equal(dl!.n, 0, "no dead letter in the table");
    assert.equal(
      await dlqRecords(kafka, config.KAFKA_TOPIC),
      0,
      "none in the DLQ topic",
    );
    assert.ok(consumer.stats.dbErrors > 0);
    await assertMatchesSource(db.sql, source);
  } finally {
    controller.abort();
    await consumer.close();
  }
});
