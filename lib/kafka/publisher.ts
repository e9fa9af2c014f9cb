/** @module A transactional Kafka publisher: each group of records is one transaction. */
import type { Kafka, Message, Producer, TopicMessages } from "kafkajs";
import type { Logger } from "../core/log.ts";
import { FencedError } from "../core/errors.ts";
import type { OutRecord } from "./client.ts";
import { fastDefaultPartitioner } from "./_partitioner.ts";

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
 * Connects an idempotent, transactional producer and claims its transactional id (kafkajs's
 * `connect()` alone does not): that fences any earlier producer with the same id and aborts its
 * open transaction. A failed connect is fatal (kafkajs would otherwise go on sending without
 * idempotence). Once fenced by a newer producer, every publish throws {@linkcode FencedError}:
 * the publisher never reconnects, so it can never publish from a stale cursor.
 */
export async function createTransactionalPublisher(
  kafka: Kafka,
  options: PublisherOptions,
): Promise<TransactionalPublisher> {
  const { transactionalId } = options;
  let producer = await connectProducer(kafka, transactionalId);
  let chain: Promise<unknown> = Promise.resolve();
  let broken = false;
  let fenced: FencedError | undefined;

  async function publishNow(records: OutRecord[]): Promise<void> {
    if (fenced) throw fenced;
    if (broken) {
      await producer.disconnect().catch(() => {});
      producer = await connectProducer(kafka, transactionalId).catch((err) => {
        throw asFenced(err, transactionalId) ?? err;
      });
      broken = false;
    }
    const began = Date.now();
    try {
      const txn = await producer.transaction();
      try {
        await txn.sendBatch({ topicMessages: topicMessages(records) });
        await txn.commit();
      } catch (err) {
        await txn.abort().catch(() => {});
        throw err;
      }
    } catch (err) {
      fenced = fencedIn(err, began, transactionalId);
      if (fenced) {
        options.log.error("producer fenced, publishing stops", {
          transactional_id: transactionalId,
          err,
        });
        throw fenced;
      }
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
    transactionTimeout: TRANSACTION_TIMEOUT_MS,
    // The coordinator answers CONCURRENT_TRANSACTIONS for a moment after each commit; retry that
    // quickly (as the Java client does) instead of after the client-wide 300 ms.
    retry: { initialRetryTime: 20, retries: 12, maxRetryTime: 10_000 },
    // kafkajs's DefaultPartitioner (the Java client's murmur2), the same partitions, faster.
    createPartitioner: fastDefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  try {
    // Never reuse a producer whose idempotent connect failed: it could send without idempotence.
    await producer.connect();
    // Claim the transactional id now: InitProducerId bumps its epoch, which fences the previous
    // holder and aborts (and waits out) its open transaction.
    const claim = await producer.transaction();
    await claim.abort();
  } catch (err) {
    await producer.disconnect().catch(() => {});
    throw err;
  }
  return producer;
}

/** How long the coordinator lets one transaction stay open before aborting it. */
const TRANSACTION_TIMEOUT_MS = 60_000;

/** Kafka's error codes for "a newer producer holds this transactional id". */
const FENCED_TYPES = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"]);
const FENCED_CODES = new Set([47, 90]);

/**
 * The FencedError of a failed transaction begun at `began`, if it was fenced. The same broker
 * error also means "this transaction outlived transactionTimeout and the coordinator aborted it"
 * (a long broker outage mid-transaction): that one is not a fence, and is retried.
 */
function fencedIn(
  err: unknown,
  began: number,
  transactionalId: string,
): FencedError | undefined {
  if (Date.now() - began >= TRANSACTION_TIMEOUT_MS) return undefined;
  return asFenced(err, transactionalId);
}

/** A {@linkcode FencedError} when `err` (or one of its causes) says the id was fenced. */
export function asFenced(
  err: unknown,
  transactionalId: string,
): FencedError | undefined {
  if (err instanceof FencedError) return err;
  for (let e = err, depth = 0; e && depth < 6; depth++) {
    const x = e as { type?: unknown; code?: unknown; cause?: unknown };
    if (
      (typeof x.type === "string" && FENCED_TYPES.has(x.type)) ||
      (typeof x.code === "number" && FENCED_CODES.has(x.code))
    ) {
      return new FencedError(transactionalId, { cause: err });
    }
    e = x.cause ?? (e as { originalError?: unknown }).originalError;
  }
  return undefined;
}

/** Groups the records by topic, keeping their order within each topic. */
function topicMessages(records: OutRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let messages = byTopic.get(r.topic);
    if (!messages) byTopic.set(r.topic, messages = []);
    messages.push({ key: r.key, value: r.value, headers: r.headers });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
