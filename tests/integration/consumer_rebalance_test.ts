/** Group membership changes mid-stream: a second consumer joins, then the first one leaves. */
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
  publishRecords,
  replayedRecords,
} from "./_consumer_fixture.ts";

Deno.test("two consumers in one group split the partitions; one joining and one leaving loses and doubles nothing", async () => {
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
  const source = replayedRecords(15_000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source, { log });

  const stopA = new AbortController();
  const a = await startConsumer(config, {
    log,
    signal: stopA.signal,
    schema: db.name,
  });
  const stopB = new AbortController();
  let b: Awaited<ReturnType<typeof startConsumer>> | undefined;
  try {
    await eventually(async () => (await count()) > 0, 60_000, 50);
    // B joins mid-stream while more data arrives.
    b = await startConsumer(config, {
      log,
      signal: stopB.signal,
      schema: db.name,
    });
    const more = replayedRecords(10_000, source.length);
    await publishRecords(kafka, config.KAFKA_TOPIC, more, { log });
    source.push(...more);
    await eventually(() => Promise.resolve(b!.stats.batches > 0), 60_000);
    // A leaves mid-stream (finishing its batch in flight); B takes over all partitions.
    const aBatches = a.stats.batches;
    stopA.abort();
    await a.close();
    assert.ok(aBatches > 0, "A wrote batches before leaving");
    const last = replayedRecords(5000, source.length);
    await publishRecords(kafka, config.KAFKA_TOPIC, [
      ...last,
      ...source.slice(0, 500),
    ], { log });
    source.push(...last);
    await eventually(
      async () => (await count()) === source.length,
      90_000,
      100,
    );
    await eventually(async () => (await b!.lag()).total_lag === "0", 30_000);
  } finally {
    stopA.abort();
    stopB.abort();
    await a.close().catch(() => {});
    await b?.close();
  }
  await assertMatchesSource(db.sql, source);
});
