/**
 * Write-behind (lib/kafka/batch_consumer.ts): kafkajs fetches the next batch while this one is
 * written. A write that fails must not let a later batch's offset be committed over it.
 */
import assert from "node:assert/strict";
import { createKafka } from "../../lib/kafka/client.ts";
import { ensureTopics } from "../../lib/kafka/topics.ts";
import { runBatchConsumer } from "../../lib/kafka/batch_consumer.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";

const TOTAL = 6000;

Deno.test("runBatchConsumer() never commits past a batch whose write failed, and writes it again", async () => {
  const config = testConfig();
  const log = captureLogger("error");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const topic = config.KAFKA_TOPIC;
  await ensureTopics(kafka, [{ topic, partitions: 1 }]);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  for (let i = 0; i < TOTAL; i += 500) {
    await producer.send({
      topic,
      messages: Array.from({ length: 500 }, (_, k) => ({
        partition: 0,
        value: `v${i + k}`.padEnd(200, "."),
      })),
    });
  }
  await producer.disconnect();

  const written = new Set<string>();
  const violations: string[] = [];
  let committed = 0n;
  let calls = 0;
  const consumer = await runBatchConsumer(kafka, {
    groupId: config.KAFKA_GROUP_ID,
    topic,
    log,
    // Small fetches: many batches, so the next one is fetched while the failing one is written.
    maxBytesPerPartition: 16 * 1024,
    maxBytes: 16 * 1024,
    handle: async (batch) => {
      calls++;
      // The third write is slow and then fails (as an aborted write does).
      if (calls === 3) {
        await new Promise((r) => setTimeout(r, 1500));
        throw new Error("write failed");
      }
      for (const r of batch.records) written.add(r.offset);
    },
    onCommitted: ({ offset }) => {
      committed = BigInt(offset);
      for (let o = 0n; o < committed; o++) {
        if (!written.has(String(o))) {
          violations.push(`committed ${offset} before offset ${o} was written`);
          break;
        }
      }
    },
  });
  try {
    await eventually(() => committed === BigInt(TOTAL), 120_000, 50);
  } finally {
    await consumer.stop();
  }
  assert.deepEqual(violations, []);
  assert.equal(written.size, TOTAL);
  assert.ok(calls > 3, "the failed batch was handed over again");
});
