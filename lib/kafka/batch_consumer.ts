/** @module A consumer group member with manual commits after each batch is written. */
import type {
  Batch,
  Consumer,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
} from "kafkajs";
import type { Logger } from "../core/log.ts";
import type { InRecord } from "./client.ts";
import { headersToStrings } from "./_headers.ts";

/** A batch of records from one partition, handed to the consumer's handler. */
export interface RecordBatch {
  topic: string;
  partition: number;
  records: InRecord[];
  highWatermark: string;
}

/** What the handler may use while it works on a batch. */
export interface BatchContext {
  /** Heartbeats now (kafkajs throttles it); rejects when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping (finish the batch, take no new work). */
  isRunning(): boolean;
  /** Aborts when this member lost the partition (rebalance); the batch is then abandoned. */
  signal: AbortSignal;
}

/** Options for {@linkcode runBatchConsumer}. */
export interface BatchConsumerOptions {
  groupId: string;
  topic: string;
  log: Logger;
  /** Writes the batch; must resolve only once it is durable. Offsets are committed after. */
  handle(batch: RecordBatch, ctx: BatchContext): Promise<void>;
  /** Called after each commit (for metrics and idle tracking). */
  onCommitted?(
    batch: {
      topic: string;
      partition: number;
      offset: string;
      highWatermark: string;
    },
  ): void;
  /** Fetch size per partition (a batch is at most about this big); default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Fetch size per request; default 4 MiB. */
  maxBytes?: number;
  sessionTimeout?: number;
  /** Partitions handled at once (each on its own DB connection); default 3. */
  concurrency?: number;
}

/** A running consumer; `stop()` finishes the batch in flight and commits it. */
export interface BatchConsumer {
  stop(): Promise<void>;
  /** Resolves when the consumer crashed for good (kafkajs gave up); never resolves otherwise. */
  crashed: Promise<Error>;
  [Symbol.asyncDispose](): Promise<void>;
}

const HEARTBEAT_MS = 3000;
const MAX_BYTES_PER_PARTITION = 1024 * 1024;
/** Heartbeat errors that mean this member no longer owns its partitions. */
const LOST_MEMBERSHIP = new Set([
  "REBALANCE_IN_PROGRESS",
  "ILLEGAL_GENERATION",
  "UNKNOWN_MEMBER_ID",
  "FENCED_INSTANCE_ID",
]);

/**
 * Runs a consumer group member with manual commits: each batch is handed to `handle`, and only
 * after it resolves is the offset past the batch (including transaction markers) committed.
 * A timer heartbeats while `handle` runs; if the heartbeat reports a rebalance the batch's
 * signal aborts and nothing is committed for it (the broker would reject the old generation's
 * commit anyway, and the next owner re-reads the batch; the sink's merge makes that a no-op).
 */
export async function runBatchConsumer(
  kafka: Kafka,
  options: BatchConsumerOptions,
): Promise<BatchConsumer> {
  const log = options.log.with({ component: "batch-consumer" });
  const consumer = createGroupConsumer(kafka, options);
  const crashed = watchForCrash(consumer);
  commitPastMarkerOnlyFetches(consumer, options, log);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.concurrency ?? 3,
      eachBatch: (payload) => processBatch(payload, options, log),
    });
  } catch (err) {
    // A client that failed to join is thrown away, never reused.
    await consumer.disconnect().catch(() => {});
    throw err;
  }
  return stoppable(consumer, crashed);
}

/** The kafkajs consumer: read_committed, manual commits, short session while heartbeating. */
function createGroupConsumer(
  kafka: Kafka,
  options: BatchConsumerOptions,
): Consumer {
  return kafka.consumer({
    groupId: options.groupId,
    readUncommitted: false,
    // A member that died (kill -9) keeps its partitions until this expires; heartbeats continue
    // during long batches (timer below), so a short timeout costs nothing while alive.
    sessionTimeout: options.sessionTimeout ?? 10_000,
    heartbeatInterval: HEARTBEAT_MS,
    maxBytesPerPartition: options.maxBytesPerPartition ??
      MAX_BYTES_PER_PARTITION,
    maxBytes: options.maxBytes ?? 4 * MAX_BYTES_PER_PARTITION,
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  });
}

/** Resolves with the error once kafkajs crashed and will not restart. */
function watchForCrash(consumer: Consumer): Promise<Error> {
  const crashed = Promise.withResolvers<Error>();
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) crashed.resolve(e.payload.error);
  });
  return crashed.promise;
}

/**
 * A fetch that held only transaction markers (or aborted records) is resolved by kafkajs
 * without calling eachBatch; commit past it so a caught-up group shows zero lag. kafkajs emits
 * this with batchSize 0 only for such filtered fetches; firstOffset is null when no record at
 * or after the fetched offset came back, and then there is nothing to skip.
 */
function commitPastMarkerOnlyFetches(
  consumer: Consumer,
  options: BatchConsumerOptions,
  log: Logger,
): void {
  consumer.on(consumer.events.END_BATCH_PROCESS, async (e) => {
    if (e.payload.batchSize !== 0 || e.payload.firstOffset === null) return;
    const offset = (BigInt(e.payload.lastOffset) + 1n).toString();
    await consumer.commitOffsets([{
      topic: e.payload.topic,
      partition: e.payload.partition,
      offset,
    }])
      .then(() => options.onCommitted?.({ ...e.payload, offset }))
      .catch((err) => log.debug("marker commit skipped", { err }));
  });
}

/** Hands one batch to `handle` while heartbeating, then commits past it unless it was lost. */
async function processBatch(
  payload: EachBatchPayload,
  options: BatchConsumerOptions,
  log: Logger,
): Promise<void> {
  const { batch, isRunning, isStale } = payload;
  if (batch.isEmpty() || !isRunning() || isStale()) return;
  const records = batch.messages.map((m) => viewRecord(batch, m));
  const lost = new AbortController();
  const beat = heartbeatOrAbandon(payload, lost, log);
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  try {
    await options.handle(
      {
        topic: batch.topic,
        partition: batch.partition,
        records,
        highWatermark: batch.highWatermark,
      },
      { heartbeat: beat, isRunning, signal: lost.signal },
    );
  } finally {
    clearInterval(timer);
  }
  // Written, but the partition moved on: never commit for a partition we no longer own.
  if (lost.signal.aborted) throw lost.signal.reason;
  if (isStale()) return;
  await commitBatch(payload, options);
}

/** The record over kafkajs's buffers (a Buffer is a Uint8Array: no copy). */
function viewRecord(batch: Batch, m: KafkaMessage): InRecord {
  return {
    topic: batch.topic,
    partition: batch.partition,
    offset: m.offset,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: headersToStrings(m.headers),
    timestamp: m.timestamp,
  };
}

/** A heartbeat that never rejects; when it reports lost membership it aborts `lost`. */
function heartbeatOrAbandon(
  { batch, heartbeat }: EachBatchPayload,
  lost: AbortController,
  log: Logger,
): () => Promise<void> {
  return async () => {
    try {
      await heartbeat();
    } catch (err) {
      const type = (err as { type?: string }).type ?? "";
      if (LOST_MEMBERSHIP.has(type) && !lost.signal.aborted) {
        log.warn("partition lost during batch, abandoning it", {
          partition: batch.partition,
          type,
        });
        lost.abort(err);
      }
    }
  };
}

/** Resolves and commits the offset past the batch, then reports it. */
async function commitBatch(
  { batch, resolveOffset, commitOffsetsIfNecessary }: EachBatchPayload,
  options: BatchConsumerOptions,
): Promise<void> {
  // lastOffset() includes trailing control records of this fetch, so the marker is skipped too.
  const last = batch.lastOffset();
  resolveOffset(last);
  const offset = (BigInt(last) + 1n).toString();
  await commitOffsetsIfNecessary({
    topics: [{
      topic: batch.topic,
      partitions: [{ partition: batch.partition, offset }],
    }],
  });
  options.onCommitted?.({
    topic: batch.topic,
    partition: batch.partition,
    offset,
    highWatermark: batch.highWatermark,
  });
}

/** The handle returned to callers: `stop()` disconnects once. */
function stoppable(
  consumer: Consumer,
  crashed: Promise<Error>,
): BatchConsumer {
  let stopped = false;
  const handle: BatchConsumer = {
    crashed,
    async stop() {
      if (stopped) return;
      stopped = true;
      await consumer.disconnect();
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}
