/** @module The dead-letter topic and its producer (records the consumer cannot store). */
import { type Kafka, Partitioners, type Producer } from "kafkajs";
import { Buffer } from "node:buffer";
import type { Logger } from "../core/log.ts";
import { ensureTopics } from "./topics.ts";

/** A record for the dead-letter topic: the original bytes and headers saying why and from where. */
export interface DeadLetterRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
}

/** Publishes dead letters; `send` resolves once every replica in sync has them (acks=all). */
export interface DeadLetterProducer {
  send(records: DeadLetterRecord[]): Promise<void>;
  disconnect(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Headroom over the source topic's limit: a dead letter carries the original plus headers. */
const DLQ_HEADROOM_BYTES = 1024 * 1024;
/** Kafka's default `max.message.bytes`, used when the source topic's cannot be read. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/**
 * Creates the dead-letter topic if missing, sized so that any record the source topic accepted
 * (its `max.message.bytes`, default 1 MiB) still fits with the added headers, and connects a plain
 * idempotent producer (no transactions: a DLQ message is published before the batch's database
 * commit, so a crash can repeat one, never lose one).
 */
export async function createDeadLetterProducer(
  kafka: Kafka,
  options: { sourceTopic: string; topic: string; log: Logger },
): Promise<DeadLetterProducer> {
  const sourceMax = await maxMessageBytes(
    kafka,
    options.sourceTopic,
    options.log,
  );
  await ensureTopics(kafka, [{
    topic: options.topic,
    partitions: 1,
    config: { "max.message.bytes": String(sourceMax + DLQ_HEADROOM_BYTES) },
  }]);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return deadLetterProducer(producer, options.topic);
}

/** The topic's `max.message.bytes`, or Kafka's default when it cannot be read (logged). */
async function maxMessageBytes(
  kafka: Kafka,
  topic: string,
  log: Logger,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let max = DEFAULT_MAX_MESSAGE_BYTES;
  try {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{
        type: 2, // TOPIC
        name: topic,
        configNames: ["max.message.bytes"],
      }],
    });
    const v = res.resources[0]?.configEntries[0]?.configValue;
    if (v && Number(v) > 0) max = Number(v);
  } catch (err) {
    log.warn("cannot read the source topic's max.message.bytes", { err });
  } finally {
    await admin.disconnect();
  }
  return max;
}

/** Wraps a connected producer: each `send` is one acks=all request to the dead-letter topic. */
function deadLetterProducer(
  producer: Producer,
  topic: string,
): DeadLetterProducer {
  const dlq: DeadLetterProducer = {
    async send(records) {
      if (records.length === 0) return;
      await producer.send({
        topic,
        acks: -1,
        messages: records.map((r) => ({
          key: r.key ? Buffer.from(r.key) : null,
          value: r.value ? Buffer.from(r.value) : null,
          headers: r.headers,
        })),
      });
    },
    async disconnect() {
      await producer.disconnect();
    },
    [Symbol.asyncDispose]() {
      return dlq.disconnect();
    },
  };
  return dlq;
}
