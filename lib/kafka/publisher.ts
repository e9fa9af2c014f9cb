/** @module A transactional Kafka publisher: each group of records is one transaction. */
import {
  type Kafka,
  Partitioners,
  type Producer,
  type TopicMessages,
} from "kafkajs";
import type { Logger } from "../core/log.ts";
import type { OutRecord } from "./client.ts";

/** Publishes groups of records atomically (one Kafka transaction each), one group at a time. */
export interface TransactionalPublisher {
  /** Sends all records in one transaction; resolves after commit, rejects after abort. */
  publish(records: OutRecord[]): Promise<void>;
  disconnect(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode createTransactionalPublisher}. */
export interface PublisherOptions {
  transactionalId: string;
  log: Logger;
}

/**
 * Connects an idempotent, transactional producer. Connecting also fences any earlier producer
 * with the same transactional id and aborts its open transaction. A failed connect is fatal
 * (kafkajs would otherwise go on sending without idempotence).
 */
export async function createTransactionalPublisher(
  kafka: Kafka,
  options: PublisherOptions,
): Promise<TransactionalPublisher> {
  let producer = await connectProducer(kafka, options.transactionalId);
  let chain: Promise<unknown> = Promise.resolve();
  let broken = false;

  async function publishNow(records: OutRecord[]): Promise<void> {
    if (broken) {
      await producer.disconnect().catch(() => {});
      producer = await connectProducer(kafka, options.transactionalId);
      broken = false;
    }
    const txn = await producer.transaction();
    try {
      await txn.sendBatch({ topicMessages: topicMessages(records) });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => {});
      broken = true; // reconnect (and re-init the transactional id) before the next attempt
      throw err;
    }
  }

  const publisher: TransactionalPublisher = {
    publish(records) {
      const next = chain.then(() => publishNow(records));
      chain = next.catch(() => {});
      return next;
    },
    async disconnect() {
      await chain;
      await producer.disconnect();
    },
    [Symbol.asyncDispose]() {
      return publisher.disconnect();
    },
  };
  return publisher;
}

/** The same publisher, telling `onKafka` whether each publish went through (for metrics). */
export function reportingPublisher(
  publisher: TransactionalPublisher,
  onKafka: ((up: boolean) => void) | undefined,
): TransactionalPublisher {
  if (!onKafka) return publisher;
  return {
    ...publisher,
    publish: (records) =>
      publisher.publish(records).then(() => onKafka(true), (err) => {
        onKafka(false);
        throw err;
      }),
  };
}

async function connectProducer(
  kafka: Kafka,
  transactionalId: string,
): Promise<Producer> {
  const producer = kafka.producer({
    idempotent: true,
    transactionalId,
    maxInFlightRequests: 1,
    transactionTimeout: 60_000,
    // The coordinator answers CONCURRENT_TRANSACTIONS for a moment after each commit; retry that
    // quickly (as the Java client does) instead of after the client-wide 300 ms.
    retry: { initialRetryTime: 20, retries: 12, maxRetryTime: 10_000 },
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  try {
    await producer.connect();
  } catch (err) {
    // Never reuse a producer whose idempotent connect failed: it could send without idempotence.
    await producer.disconnect().catch(() => {});
    throw err;
  }
  return producer;
}

/** Groups the records by topic, keeping their order within each topic. */
function topicMessages(records: OutRecord[]): TopicMessages[] {
  const byTopic = new Map<string, OutRecord[]>();
  for (const r of records) {
    byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
  }
  return [...byTopic].map(([topic, rs]) => ({
    topic,
    messages: rs.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
    })),
  }));
}
