/** @module Reads a topic from the beginning to its current end; restores compacted checkpoints. */
import type { Admin, Kafka, KafkaMessage } from "kafkajs";
import type { Logger } from "../core/log.ts";
import type { InRecord } from "./client.ts";
import { headersToStrings } from "./_headers.ts";

/** Options for {@linkcode readToEnd} and {@linkcode readCompacted}. */
export interface ReadCompactedOptions {
  clientId: string;
  log: Logger;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Reads a topic from the beginning to its current end (read_committed) and hands each record to
 * `onRecord`. The end is the high watermark when the read starts; trailing transaction markers
 * and aborted records count as read.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  onRecord: (record: InRecord) => void,
  options: ReadCompactedOptions,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.clientId}-read-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const pending = await nonEmptyPartitionEnds(admin, topic);
    if (pending.size === 0) return;
    await consumeUntilEnds(
      kafka,
      { topic, groupId, pending, onRecord },
      options,
    );
    await admin.deleteGroups([groupId]).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}

/** Reads a compacted topic to its end and returns the latest value per key (restores checkpoints). */
export async function readCompacted(
  kafka: Kafka,
  topic: string,
  options: ReadCompactedOptions,
): Promise<Map<string, string>> {
  const latest = new Map<string, string>();
  const text = new TextDecoder();
  await readToEnd(kafka, topic, (r) => {
    if (r.key === null) return;
    const key = text.decode(r.key);
    if (r.value === null) latest.delete(key);
    else latest.set(key, text.decode(r.value));
  }, options);
  return latest;
}

/** One read to the end: where it stops and who gets the records. */
interface EndRead {
  topic: string;
  groupId: string;
  /** The high watermark of each partition still to be read to. */
  pending: Map<number, bigint>;
  onRecord: (record: InRecord) => void;
}

/** The high watermark of each partition that holds anything. */
async function nonEmptyPartitionEnds(
  admin: Admin,
  topic: string,
): Promise<Map<number, bigint>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const pending = new Map<number, bigint>();
  for (const o of offsets) {
    if (BigInt(o.high) > BigInt(o.low)) {
      pending.set(o.partition, BigInt(o.high));
    }
  }
  return pending;
}

/** Consumes with a throwaway group until every pending partition reached its end. */
async function consumeUntilEnds(
  kafka: Kafka,
  read: EndRead,
  options: ReadCompactedOptions,
): Promise<void> {
  const consumer = kafka.consumer({
    groupId: read.groupId,
    maxWaitTimeInMs: 250,
    readUncommitted: false,
  });
  const ends = trackEnds(read.pending);
  consumer.on(
    consumer.events.END_BATCH_PROCESS,
    (e) => ends.advance(e.payload.partition, e.payload.lastOffset),
  );
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: read.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          read.onRecord(copyRecord(read.topic, batch.partition, m));
        }
        ends.advance(batch.partition, batch.lastOffset());
        return Promise.resolve();
      },
    });
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 60_000);
    const signal = options.signal
      ? AbortSignal.any([options.signal, timeout])
      : timeout;
    await abortable(ends.done, signal);
  } finally {
    await consumer.disconnect();
  }
}

/** Crosses off partitions as batches pass their end; `done` resolves when none is left. */
function trackEnds(pending: Map<number, bigint>) {
  const done = Promise.withResolvers<void>();
  const advance = (partition: number, lastOffset: string) => {
    const target = pending.get(partition);
    if (target !== undefined && BigInt(lastOffset) + 1n >= target) {
      pending.delete(partition);
    }
    if (pending.size === 0) done.resolve();
  };
  return { advance, done: done.promise };
}

/** The record with its key and value copied out of kafkajs's buffers. */
function copyRecord(
  topic: string,
  partition: number,
  m: KafkaMessage,
): InRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? new Uint8Array(m.key) : null,
    value: m.value ? new Uint8Array(m.value) : null,
    headers: headersToStrings(m.headers),
    timestamp: m.timestamp,
  };
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}
