/**
 * PostgreSQL faults that are not about a row, while rows flow: a table locked past `lock_timeout`,
 * a revoked grant. The consumer retries without committing and dead-letters nothing; once the
 * cause goes away every row arrives, once.
 */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import { adminUrl, withDatabase } from "../_pg_admin.ts";
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

/** A login role of its own for the consumer, owning the fresh database's public schema. */
async function appRole(
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
async function dropRole(name: string): Promise<void> {
  const root = connectDb(await adminUrl(), { max: 1 });
  await root.unsafe(`drop role if exists ${name}`).catch(() => {});
  await root.end();
}

Deno.test("consumer: the main table locked for 15 s under a 300 ms lock_timeout costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const dbName = new URL(db.url).pathname.slice(1);
  const root = connectDb(await adminUrl(), { max: 1 });
  await root.unsafe(`alter database ${dbName} set lock_timeout = '300ms'`);
  await root.end();
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
  let roleName = "";
  try {
    await revokedGrant(base, (n) => roleName = n);
  } finally {
    if (roleName) await dropRole(roleName);
  }
});

/** The body of the revoked-grant test; `named` learns the role to drop afterwards. */
async function revokedGrant(
  base: ReturnType<typeof testConfig>,
  named: (role: string) => void,
): Promise<void> {
  await using db = await freshDatabase(base.DATABASE_URL);
  await using role = await appRole(db.url);
  named(role.name);
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
    (await role.admin`select count(*)::int as n from wiki_recent_changes`)[0]!
      .n as number;
  try {
    await eventually(async () => (await count()) === 400, 60_000);
    await role.admin.unsafe(
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
    await role.admin.unsafe(
      `grant insert on wiki_recent_changes to ${role.name}`,
    );
    const source = await publishing;
    await eventually(async () => (await count()) === source.length, 120_000);
    await eventually(
      async () => (await consumer.lag()).total_lag === "0",
      30_000,
    );
    const [dl] = await role.admin`select count(*)::int as n from dead_letters`;
    assert.equal(dl!.n, 0, "no dead letter in the table");
    assert.equal(
      await dlqRecords(kafka, config.KAFKA_TOPIC),
      0,
      "none in the DLQ topic",
    );
    assert.ok(consumer.stats.dbErrors > 0);
    await assertMatchesSource(role.admin, source);
  } finally {
    controller.abort();
    await consumer.close();
  }
}
