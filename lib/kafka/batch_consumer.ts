/** @module A consumer group member with manual commits after each batch is written. */
import type {
  Batch,
  Consumer,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
} from "kafkajs";
import type { Logger } from "../core/log.ts";
import type { StageTimes } from "../core/stage_times.ts";
import type { InRecord } from "./client.ts";
import { headersToStrings } from "./_headers.ts";
import { WriteBehind } from "./_write_behind.ts";
import {
  commitPastMarkerOnlyFetches,
  type Pipeline,
  timeFetches,
} from "./_consumer_events.ts";

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
  /**
   * Called with each batch as soon as it is fetched, before it waits for its partition's previous
   * write, with the same object `handle` later gets (if the batch is still wanted then): CPU work
   * such as decoding done here overlaps the write in flight.
   */
  prepare?(batch: RecordBatch): void;
  /** Called after each commit (for metrics and idle tracking). */
  onCommitted?(
    batch: {
      topic: string;
      partition: number;
      offset: string;
      highWatermark: string;
    },
  ): void;
  /** Fetch size per partition (a batch is at most about this big, or one record batch); default 512 KiB. */
  maxBytesPerPartition?: number;
  /** Fetch size per request; default twice the partition size (one fetch waits beside each write). */
  maxBytes?: number;
  sessionTimeout?: number;
  /** Partitions handled at once (their writes may share a transaction); default 3. */
  concurrency?: number;
  /** Adds the milliseconds of Kafka fetches and offset commits. */
  times?: Pick<StageTimes, "fetch" | "offset_commit">;
}

/** A running consumer; `stop()` finishes the batch in flight and commits it. */
export interface BatchConsumer {
  stop(): Promise<void>;
  /** Resolves when the consumer crashed for good (kafkajs gave up); never resolves otherwise. */
  crashed: Promise<Error>;
  [Symbol.asyncDispose](): Promise<void>;
}

const HEARTBEAT_MS = 3000;
// Measured (docs/benchmarks.md, third round): 512 KiB reads as fast as 1 MiB in ~25 MB less memory.
const MAX_BYTES_PER_PARTITION = 512 * 1024;
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
 * Write-behind: once a batch is handed over, kafkajs fetches the next one while it is written
 * (at most one write in flight per partition; the next batch of a partition waits for it). A
 * failed write seeks its partition back to the batch, so nothing after it is committed first.
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
  const ctx: Pipeline = {
    consumer,
    options,
    log,
    chain: new WriteBehind(),
    stopping: false,
  };
  consumer.on(consumer.events.GROUP_JOIN, () => ctx.chain.bump());
  commitPastMarkerOnlyFetches(ctx);
  timeFetches(consumer, options.times);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: options.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.concurrency ?? 3,
      eachBatch: (payload) => acceptBatch(payload, ctx),
    });
  } catch (err) {
    // A client that failed to join is thrown away, never reused.
    await consumer.disconnect().catch(() => {});
    throw err;
  }
  return stoppable(ctx, crashed);
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
    maxBytes: options.maxBytes ?? 2 * MAX_BYTES_PER_PARTITION,
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
 * eachBatch: waits for the partition's previous write, then starts this batch's write behind it
 * and resolves the offset so kafkajs fetches on. Stale, stopping or after a failed write: the
 * batch is left alone (not resolved), to be fetched again.
 */
async function acceptBatch(
  payload: EachBatchPayload,
  ctx: Pipeline,
): Promise<void> {
  const { batch, isRunning, isStale } = payload;
  const records = recordBatchOf(batch);
  if (!batch.isEmpty()) ctx.options.prepare?.(records);
  await ctx.chain.previous(batch.partition);
  if (ctx.stopping) {
    ctx.consumer.pause([{ topic: batch.topic }]);
    return;
  }
  if (batch.isEmpty() || !isRunning() || isStale()) return;
  const first = batch.firstOffset();
  if (first === null || !ctx.chain.accepts(batch.partition, first)) return;
  const generation = ctx.chain.generation;
  ctx.chain.push(batch.partition, first, async () => {
    try {
      await processBatch(payload, records, ctx, generation);
    } catch (err) {
      if (!ctx.stopping && ctx.chain.generation === generation) {
        // Fetch this batch again; the batches fetched after it are refused until then.
        ctx.consumer.seek({
          topic: batch.topic,
          partition: batch.partition,
          offset: first,
        });
      }
      throw err;
    }
  });
  payload.resolveOffset(batch.lastOffset());
}

/** Hands one batch to `handle` while heartbeating, then commits past it unless it was lost. */
async function processBatch(
  payload: EachBatchPayload,
  records: RecordBatch,
  { options, log, chain }: Pipeline,
  generation: number,
): Promise<void> {
  const { isRunning, isStale } = payload;
  const lost = new AbortController();
  const beat = heartbeatOrAbandon(payload, lost, log);
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  try {
    await options.handle(records, {
      heartbeat: beat,
      isRunning,
      signal: lost.signal,
    });
  } finally {
    clearInterval(timer);
  }
  // Written, but the partition moved on: never commit for a partition we may no longer own.
  if (lost.signal.aborted) throw lost.signal.reason;
  if (isStale() || chain.generation !== generation) return;
  await commitBatch(payload, options);
}

/** The handler's view of a fetched batch. */
function recordBatchOf(batch: Batch): RecordBatch {
  return {
    topic: batch.topic,
    partition: batch.partition,
    records: batch.messages.map((m) => viewRecord(batch, m)),
    highWatermark: batch.highWatermark,
  };
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

/** Commits the offset past the batch (resolved when it was accepted), then reports it. */
async function commitBatch(
  { batch, commitOffsetsIfNecessary }: EachBatchPayload,
  options: BatchConsumerOptions,
): Promise<void> {
  // lastOffset() includes trailing control records of this fetch, so the marker is skipped too.
  const last = batch.lastOffset();
  const offset = (BigInt(last) + 1n).toString();
  const t0 = performance.now();
  await commitOffsetsIfNecessary({
    topics: [{
      topic: batch.topic,
      partitions: [{ partition: batch.partition, offset }],
    }],
  });
  if (options.times) options.times.offset_commit += performance.now() - t0;
  options.onCommitted?.({
    topic: batch.topic,
    partition: batch.partition,
    offset,
    highWatermark: batch.highWatermark,
  });
}

/** The handle returned to callers: `stop()` finishes the writes in flight, commits, disconnects. */
function stoppable(ctx: Pipeline, crashed: Promise<Error>): BatchConsumer {
  let stopped: Promise<void> | undefined;
  const handle: BatchConsumer = {
    crashed,
    stop() {
      stopped ??= (async () => {
        ctx.stopping = true;
        await ctx.chain.drain();
        await ctx.consumer.disconnect();
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return handle;
}
