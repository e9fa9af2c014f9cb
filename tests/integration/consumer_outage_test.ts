/** PostgreSQL stopped and started again mid-stream: consumption pauses, nothing is committed, then resumes. */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";
import {
  assertMatchesSource,
  committedOffsets,
  publishRecords,
  replayedRecords,
  services,
} from "./_consumer_fixture.ts";

// postgres.js 3.4 can leave a connection that died mid-COPY stuck for good; the sink recovers by
// replacing its pool after a connection failure or a write timeout (lib/sink/sink.ts).
Deno.test({
  name:
    "consumer pauses through a PostgreSQL outage without committing, then resumes and loses nothing",
}, async () => {
  const config = testConfig({ KAFKA_PARTITIONS: "3" });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  await using db = await tempSchema(config);
  const count = async () => {
    const [r] = await db
      .sql`select count(*)::int as n from wiki_recent_changes`;
    return r!.n as number;
  };
  const source = replayedRecords(30_000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source, { log });

  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
  });
  try {
    await eventually(async () => (await count()) > 0, 60_000, 50);
    await services("stop-pg");
    try {
      // Batches in flight fail; the offsets must stay where the last database commit left them.
      await new Promise((r) => setTimeout(r, 1000));
      const before = await committedOffsets(
        kafka,
        config.KAFKA_GROUP_ID,
        config.KAFKA_TOPIC,
      );
      const more = replayedRecords(3000, source.length);
      await publishRecords(kafka, config.KAFKA_TOPIC, more, { log });
      source.push(...more);
      await new Promise((r) => setTimeout(r, 5000));
      const during = await committedOffsets(
        kafka,
        config.KAFKA_GROUP_ID,
        config.KAFKA_TOPIC,
      );
      assert.deepEqual(during, before, "no commit while the database is down");
      assert.ok(consumer.stats.dbErrors > 0, "write failures were retried");
    } finally {
      await services("start-pg");
    }
    // It resumes on its own.
    await eventually(
      async () => (await count()) === source.length,
      120_000,
      200,
    );
    await eventually(
      async () => (await consumer.lag()).total_lag === "0",
      30_000,
    );
  } finally {
    controller.abort();
    await consumer.close();
  }
  await assertMatchesSource(db.sql, source);
});
