/** Records and record batches bigger than the fetch size per partition, on real Kafka. */
import assert from "node:assert/strict";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { runBatchConsumer } from "../../lib/kafka/batch_consumer.ts";
import { ensureTopics } from "../../lib/kafka/topics.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";

const SMALL = "s".repeat(1000);

/** The test's topic with `partitions` partitions, and a client for it. */
async function freshTopic(partitions: number) {
  const config = testConfig();
  const topic = config.KAFKA_TOPIC;
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "fetch-size",
    log: captureLogger("error"),
  });
  await ensureTopics(kafka, [{ topic, partitions }]);
  return { kafka, topic };
}

/** Consumes `topic` from the start and records every (partition, offset, value length) seen. */
async function consumeAll(kafka: Kafka, topic: string) {
  const seen = new Map<string, number>();
  const consumer = await runBatchConsumer(kafka, {
    groupId: `g-${crypto.randomUUID().slice(0, 8)}`,
    topic,
    log: captureLogger("error"),
    handle: (batch) => {
      for (const r of batch.records) {
        seen.set(`${r.partition}:${r.offset}`, r.value?.length ?? -1);
      }
      return Promise.resolve();
    },
  });
  return { seen, consumer };
}

Deno.test("runBatchConsumer() delivers a 900 KB record and a 900 KB transactional batch", async () => {
  const { kafka, topic } = await freshTopic(1);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    transactionalId: `fs-${crypto.randomUUID().slice(0, 8)}`,
  });
  await producer.connect();
  const { seen, consumer } = await consumeAll(kafka, topic);
  try {
    const sends = [
      [SMALL],
      ["b".repeat(900_000)],
      ["c".repeat(300_000), "d".repeat(300_000), "e".repeat(300_000)],
      [SMALL],
    ];
    for (const values of sends) {
      const tx = await producer.transaction();
      await tx.send({
        topic,
        messages: values.map((value) => ({ key: "k", value, partition: 0 })),
      });
      await tx.commit();
    }
    // Offsets: 0, (1 marker) 2, (3) 4 5 6, (7) 8.
    await eventually(() => seen.size === 6, 60_000);
    assert.deepEqual([...seen.values()], [
      1000,
      900_000,
      300_000,
      300_000,
      300_000,
      1000,
    ]);
  } finally {
    await consumer.stop();
    await producer.disconnect();
  }
});

Deno.test("runBatchConsumer() delivers a 900 KB record on one partition while another keeps busy", async () => {
  const { kafka, topic } = await freshTopic(2);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const { seen, consumer } = await consumeAll(kafka, topic);
  let busy = true;
  const feeding = (async () => {
    // Partition 0 gets new records all the time, as a live topic's partitions do.
    while (busy) {
      await producer.send({
        topic,
        messages: Array.from(
          { length: 20 },
          () => ({ key: "k", value: SMALL, partition: 0 }),
        ),
      });
    }
  })();
  try {
    await eventually(() => seen.size > 200, 45_000);
    await producer.send({
      topic,
      messages: [{ key: "big", value: "b".repeat(900_000), partition: 1 }],
    });
    await eventually(() => seen.has("1:0"), 45_000);
    assert.equal(seen.get("1:0"), 900_000);
  } finally {
    busy = false;
    await feeding;
    await consumer.stop();
    await producer.disconnect();
  }
});
