/** Retention overtakes a stopped consumer: the loss is logged, counted and shown, never silent. */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { createApp } from "../../lib/http/app.ts";
import { renderMetrics } from "../../lib/http/metrics.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";
import { publishRecords, replayedRecords } from "./_consumer_fixture.ts";

Deno.test("consumer: records deleted by retention while it was stopped are reported on start", async () => {
  const config = testConfig({ KAFKA_PARTITIONS: "1" });
  await using db = await tempSchema(config);
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const topic = config.KAFKA_TOPIC;
  await publishRecords(kafka, topic, replayedRecords(100), {
    log,
    partitions: 1,
  });
  const run = async (
    check: (c: Awaited<ReturnType<typeof startConsumer>>) => Promise<void>,
  ) => {
    const controller = new AbortController();
    const consumer = await startConsumer(config, {
      log,
      signal: controller.signal,
      schema: db.name,
    });
    try {
      await check(consumer);
    } finally {
      controller.abort();
      await consumer.close();
    }
  };
  await run(async (c) => {
    await eventually(async () => (await c.lag()).total_lag === "0", 60_000);
    assert.deepEqual((await c.lag()).lost_to_retention, []);
  });
  // While it is stopped: 100 more records, and retention deletes all but the last 30.
  await publishRecords(kafka, topic, replayedRecords(100, 100), {
    log,
    partitions: 1,
  });
  const admin = kafka.admin();
  await admin.connect();
  let committed: bigint, start: bigint;
  try {
    const [off] = await admin.fetchOffsets({
      groupId: config.KAFKA_GROUP_ID,
      topics: [topic],
    });
    committed = BigInt(off!.partitions[0]!.offset);
    const [end] = await admin.fetchTopicOffsets(topic);
    start = BigInt(end!.high) - 30n;
    await admin.deleteTopicRecords({
      topic,
      partitions: [{ partition: 0, offset: start.toString() }],
    });
  } finally {
    await admin.disconnect();
  }
  const lost = start - committed;
  assert.ok(lost > 50n);
  await run(async (c) => {
    const line = log.lines.find((l) =>
      l.msg === "records deleted by retention before they were written"
    );
    assert.ok(line, "an error line names the loss");
    assert.equal(line.level, "error");
    assert.equal(line.topic, topic);
    assert.equal(line.partition, 0);
    assert.equal(line.records_lost, Number(lost));
    const report = await c.lag();
    assert.equal(report.lost_to_retention.length, 1);
    assert.equal(report.lost_to_retention[0]!.records, lost.toString());
    const app = createApp({
      service: "consumer",
      health: c.health,
      ready: c.ready,
      lag: c.lag,
    });
    const health = await (await app.request("/healthz")).json();
    assert.equal(health.details.records_lost_to_retention, lost.toString());
    const lagBody = await (await app.request("/lag")).json();
    assert.equal(lagBody.lost_to_retention[0].records, lost.toString());
    assert.match(
      await renderMetrics({ consumer: c.stats }),
      new RegExp(`wikistream_retention_lost_records_total ${lost}\\n`),
    );
    // The records that survived are still written.
    await eventually(async () => (await c.lag()).total_lag === "0", 60_000);
  });
});
