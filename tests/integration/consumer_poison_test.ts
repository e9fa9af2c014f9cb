/** Poison records of every kind and in-batch duplicates, on real Kafka and PostgreSQL. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { MAX_VALUE_BYTES } from "../../lib/sink/decode.ts";
import { createKafka, type InRecord } from "../../lib/kafka/client.ts";
import { runBatchConsumer } from "../../lib/kafka/batch_consumer.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
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

const enc = new TextEncoder();

/** Each poison value, keyed by the reason the consumer must give. */
function poison(
  good: Envelope,
): { reason: string; value: Uint8Array | null }[] {
  const row = good.row;
  const json = (v: unknown) => enc.encode(JSON.stringify(v));
  const big = JSON.stringify({
    ...good,
    row: { ...row, comment: "x".repeat(MAX_VALUE_BYTES) },
  });
  return [
    { reason: "not_json", value: enc.encode("{not json") },
    { reason: "not_json", value: new Uint8Array([0xff, 0xfe, 0x7b]) }, // not UTF-8
    { reason: "bad_envelope", value: json({ ...good, v: 2 }) },
    {
      reason: "bad_row",
      value: json({ ...good, row: { ...row, type: "nonsense" } }),
    },
    { reason: "too_large", value: enc.encode(big) },
    {
      reason: "bad_text",
      value: json({ ...good, row: { ...row, title: "a\u0000b" } }),
    },
    // A lone surrogate written as a JSON escape: valid UTF-8 bytes, unstorable text.
    {
      reason: "bad_text",
      value: enc.encode(
        JSON.stringify({ ...good, row: { ...row, comment: "@" } }).replace(
          '"@"',
          '"\\ud800"',
        ),
      ),
    },
    { reason: "empty", value: null },
  ];
}

Deno.test("consumer dead-letters poison records to the table and the DLQ topic, and goes on", async () => {
  const config = testConfig({ KAFKA_PARTITIONS: "1" });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  await using db = await tempSchema(config);
  const topic = config.KAFKA_TOPIC;
  const good = replayedRecords(400);
  const template = JSON.parse(good[0]!.value) as Envelope;
  const bad = poison(template);
  // Good rows first (creates the topic), then poison between two more good halves, all on one
  // partition, then one envelope twice in a single transaction (an in-batch duplicate).
  await publishRecords(kafka, topic, good.slice(0, 200), {
    log,
    partitions: 1,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sent = new Map<string, Uint8Array | null>(); // offset -> original bytes
  try {
    for (const b of bad) {
      const [meta] = await producer.send({
        topic,
        messages: [{
          key: "poison",
          value: b.value ? Buffer.from(b.value) : null,
          headers: { origin: "test" },
        }],
      });
      sent.set(meta!.baseOffset!, b.value);
    }
  } finally {
    await producer.disconnect();
  }
  const dup = good[200]!;
  await publishRecords(kafka, topic, [dup, dup, ...good.slice(200)], {
    log,
    partitions: 1,
  });

  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
  });
  try {
    await eventually(async () => {
      const [r] = await db.sql`select count(*)::int as n from dead_letters`;
      const [c] = await db
        .sql`select count(*)::int as n from wiki_recent_changes`;
      return r!.n === bad.length && c!.n === good.length;
    }, 60_000);
    assert.equal(consumer.stats.deadLettered, bad.length);
    assert.ok(
      consumer.stats.duplicates >= 1,
      "the in-batch duplicate was counted",
    );
  } finally {
    controller.abort();
    await consumer.close();
  }
  await assertMatchesSource(db.sql, good);

  // The table: original bytes, reason and where from.
  const rows = await db.sql<
    {
      offset: string;
      value: Uint8Array | null;
      reason: string;
      headers: Record<string, string>;
      topic: string;
    }[]
  >`select "offset"::text as offset, value, reason, headers, topic from dead_letters order by "offset"`;
  assert.deepEqual(rows.map((r) => r.reason), bad.map((b) => b.reason));
  for (const r of rows) {
    assert.equal(r.topic, topic);
    assert.deepEqual(
      r.value === null ? null : new Uint8Array(r.value),
      sent.get(r.offset),
    );
    assert.equal(r.headers["dlq.source_offset"], r.offset);
    assert.equal(r.headers.origin, "test");
  }

  // The DLQ topic: the same records, original bytes and key, headers saying why, where and when.
  const dlq: InRecord[] = [];
  const reader = await runBatchConsumer(kafka, {
    groupId: `${config.KAFKA_GROUP_ID}-dlq-reader`,
    topic: topicNames(topic).dlq,
    log,
    handle: (batch) => {
      dlq.push(...batch.records);
      return Promise.resolve();
    },
  });
  try {
    await eventually(() => Promise.resolve(dlq.length >= bad.length), 30_000);
  } finally {
    await reader.stop();
  }
  assert.equal(dlq.length, bad.length);
  for (const m of dlq) {
    const offset = m.headers["dlq.source_offset"]!;
    assert.ok(sent.has(offset), `DLQ record for offset ${offset}`);
    const original = sent.get(offset)!;
    assert.deepEqual(
      m.value === null ? null : new Uint8Array(m.value),
      original,
    );
    assert.equal(new TextDecoder().decode(m.key!), "poison");
    assert.equal(m.headers["dlq.source_topic"], topic);
    assert.equal(m.headers["dlq.source_partition"], "0");
    assert.ok(m.headers["dlq.reason"]);
    assert.ok(m.headers["dlq.error"]);
    assert.ok(!Number.isNaN(Date.parse(m.headers["dlq.received_at"]!)));
    assert.equal(m.headers.origin, "test");
  }
  assert.deepEqual(
    dlq.map((m) => m.headers["dlq.reason"]).sort(),
    bad.map((b) => b.reason).sort(),
  );
});
