/** Lag on real Kafka: no commit yet, commits below the log start, transaction markers. */
import assert from "node:assert/strict";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { createTransactionalPublisher } from "../../lib/kafka/publisher.ts";
import { ensureTopics } from "../../lib/kafka/topics.ts";
import { fetchLag } from "../../lib/kafka/lag.ts";
import { runBatchConsumer } from "../../lib/kafka/batch_consumer.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";

function setup(partitions: number) {
  const config = testConfig();
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  return { config, log, kafka, topic: config.KAFKA_TOPIC, partitions };
}

async function produceTo(
  kafka: Kafka,
  topic: string,
  counts: Record<number, number>,
) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (const [partition, n] of Object.entries(counts)) {
      await producer.send({
        topic,
        messages: Array.from({ length: n }, (_, i) => ({
          partition: Number(partition),
          key: `k${i}`,
          value: `v${i}`,
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

Deno.test("fetchLag() counts a partition with no commit from its log start", async () => {
  const { kafka, topic, config } = setup(2);
  await ensureTopics(kafka, [{ topic, partitions: 2 }]);
  await produceTo(kafka, topic, { 0: 3, 1: 2 });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.setOffsets({
      groupId: config.KAFKA_GROUP_ID,
      topic,
      partitions: [{ partition: 0, offset: "1" }],
    });
    const lag = await fetchLag(admin, {
      groupId: config.KAFKA_GROUP_ID,
      topic,
    });
    assert.deepEqual(lag, [
      { partition: 0, committed: "1", start: "0", end: "3", lag: "2" },
      { partition: 1, committed: null, start: "0", end: "2", lag: "2" },
    ]);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

Deno.test("fetchLag() counts a commit below the log start (after retention) from the log start", async () => {
  const { kafka, topic, config } = setup(1);
  await ensureTopics(kafka, [{ topic, partitions: 1 }]);
  await produceTo(kafka, topic, { 0: 5 });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.setOffsets({
      groupId: config.KAFKA_GROUP_ID,
      topic,
      partitions: [{ partition: 0, offset: "1" }],
    });
    await admin.deleteTopicRecords({
      topic,
      partitions: [{ partition: 0, offset: "3" }],
    });
    const lag = await fetchLag(admin, {
      groupId: config.KAFKA_GROUP_ID,
      topic,
    });
    assert.deepEqual(lag, [
      { partition: 0, committed: "1", start: "3", end: "5", lag: "2" },
    ]);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

Deno.test("a caught-up group on a transactional topic shows lag 0, not the marker", async () => {
  const { kafka, topic, config, log } = setup(2);
  await ensureTopics(kafka, [{ topic, partitions: 2 }]);
  await using publisher = await createTransactionalPublisher(kafka, {
    transactionalId: config.KAFKA_TRANSACTIONAL_ID,
    log,
  });
  const seen = new Set<string>();
  const publish = async (from: number, n: number) => {
    for (let t = from; t < from + n; t++) {
      await publisher.publish(
        Array.from({ length: 4 }, (_, i) => ({
          topic,
          key: `t${t}-${i}`,
          value: `v${t}-${i}`,
        })),
      );
    }
  };
  await publish(0, 3);
  const admin = kafka.admin();
  await admin.connect();
  const consumer = await runBatchConsumer(kafka, {
    groupId: config.KAFKA_GROUP_ID,
    topic,
    log,
    handle: (batch) => {
      for (const r of batch.records) {
        seen.add(new TextDecoder().decode(r.value!));
      }
      return Promise.resolve();
    },
  });
  try {
    const caughtUp = async (records: number) => {
      await eventually(() => Promise.resolve(seen.size === records), 60_000);
      const lag = await eventually(async () => {
        const l = await fetchLag(admin, {
          groupId: config.KAFKA_GROUP_ID,
          topic,
        });
        return l.every((p) => p.lag === "0") ? l : false;
      }, 60_000);
      // Every partition holds data plus one commit marker per transaction; lag counts neither.
      const end = lag.reduce((n, p) => n + Number(p.end), 0);
      assert.ok(end > records, `end offsets ${end} include markers`);
      for (const p of lag) assert.equal(p.committed, p.end);
    };
    await caughtUp(12);
    // A transaction published after the group is idle ends in a marker-only fetch too.
    await publish(3, 1);
    await caughtUp(16);
  } finally {
    await consumer.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});
