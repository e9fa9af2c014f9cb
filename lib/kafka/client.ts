/** @module The Kafka edge (kafkajs): topics, a transactional publisher, a batch consumer, lag. */
import {
  type Admin,
  type Consumer,
  type IHeaders,
  Kafka,
  logLevel as KafkaLogLevel,
  Partitioners,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import { Buffer } from "node:buffer";
import { type Config, readCaFile } from "../core/config.ts";
import type { Logger } from "../core/log.ts";

/** A record to publish. */
export interface OutRecord {
  topic: string;
  key: string | null;
  value: string;
  headers?: Record<string, string>;
}

/** A record as consumed. */
export interface InRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  timestamp: string;
}

/** A topic to create when missing. */
export interface TopicSpec {
  topic: string;
  partitions: number;
  config?: Record<string, string>;
}

/** SASL credentials for {@linkcode createKafka}. */
export interface KafkaSasl {
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  username: string;
  password: string;
}

/** Connection settings for {@linkcode createKafka}. */
export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  log: Logger;
  /** TLS: `true` trusts the system CAs; `{ ca }` trusts these PEM certificates instead. */
  ssl?: boolean | { ca: string };
  sasl?: KafkaSasl;
}

/** The security settings of the config, for {@linkcode createKafka}; reads the CA file once. */
export function kafkaSecurity(
  config: Pick<
    Config,
    | "KAFKA_SSL"
    | "KAFKA_SSL_CA_FILE"
    | "KAFKA_SASL_MECHANISM"
    | "KAFKA_SASL_USERNAME"
    | "KAFKA_SASL_PASSWORD"
  >,
): Pick<KafkaOptions, "ssl" | "sasl"> {
  const ssl = config.KAFKA_SSL_CA_FILE !== undefined
    ? { ca: readCaFile(config.KAFKA_SSL_CA_FILE, "KAFKA_SSL_CA_FILE") }
    : config.KAFKA_SSL;
  if (config.KAFKA_SASL_MECHANISM === "none") return { ssl };
  return {
    ssl,
    sasl: {
      mechanism: config.KAFKA_SASL_MECHANISM,
      username: config.KAFKA_SASL_USERNAME ?? "",
      password: config.KAFKA_SASL_PASSWORD ?? "",
    },
  };
}

/** Per-partition lag of a consumer group. */
export interface PartitionLag {
  partition: number;
  committed: string | null;
  start: string;
  end: string;
  lag: string;
}

/** Creates the kafkajs client with its logs routed into ours. */
export function createKafka(options: KafkaOptions): Kafka {
  const log = options.log.with({ component: "kafkajs" });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.ssl
      ? { ssl: options.ssl === true ? true : { ca: [options.ssl.ca] } }
      : {}),
    ...(options.sasl ? { sasl: { ...options.sasl } as SASLOptions } : {}),
    connectionTimeout: 5000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => ({ level, log: entry }) => {
      const { message, timestamp: _t, logger: _l, ...fields } = entry;
      // Our transactional producer keeps kafkajs's finite retries on purpose (a send must fail
      // eventually so the poll loop can back off and shut down); its warning about that is noise.
      if (
        String(message).startsWith(
          "Limiting retries for the idempotent producer",
        )
      ) return;
      // kafkajs logs retriable protocol errors (e.g. CONCURRENT_TRANSACTIONS right after a
      // commit) at ERROR before retrying them itself: those are warnings.
      const retrying = "retryCount" in fields ||
        String(message).startsWith("Response ");
      const fn = level <= KafkaLogLevel.ERROR && !retrying
        ? log.error
        : level <= KafkaLogLevel.WARN
        ? log.warn
        : log.debug;
      fn(message, fields);
    },
  });
}

/** Creates each topic that does not exist yet (idempotent; safe when several processes race). */
export async function ensureTopics(
  kafka: Kafka,
  specs: TopicSpec[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: -1,
        configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({
          name,
          value,
        })),
      })),
    }).catch((err: Error & { type?: string }) => {
      if (
        err.type !== "TOPIC_ALREADY_EXISTS" &&
        !/already exists/i.test(err.message)
      ) throw err;
    });
  } finally {
    await admin.disconnect();
  }
}

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
      const byTopic = new Map<string, OutRecord[]>();
      for (const r of records) {
        byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
      }
      await txn.sendBatch({
        topicMessages: [...byTopic].map(([topic, rs]) => ({
          topic,
          messages: rs.map((r) => ({
            key: r.key,
            value: r.value,
            headers: r.headers,
          })),
        })),
      });
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
  await producer.connect();
  return producer;
}

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
    const offsets = await admin.fetchTopicOffsets(topic);
    const pending = new Map<number, bigint>();
    for (const o of offsets) {
      if (BigInt(o.high) > BigInt(o.low)) {
        pending.set(o.partition, BigInt(o.high));
      }
    }
    if (pending.size === 0) return;
    const consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs: 250,
      readUncommitted: false,
    });
    const done = Promise.withResolvers<void>();
    const advance = (partition: number, lastOffset: string) => {
      const target = pending.get(partition);
      if (target !== undefined && BigInt(lastOffset) + 1n >= target) {
        pending.delete(partition);
      }
      if (pending.size === 0) done.resolve();
    };
    consumer.on(
      consumer.events.END_BATCH_PROCESS,
      (e) => advance(e.payload.partition, e.payload.lastOffset),
    );
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: ({ batch }) => {
          for (const m of batch.messages) {
            onRecord({
              topic,
              partition: batch.partition,
              offset: m.offset,
              key: m.key ? new Uint8Array(m.key) : null,
              value: m.value ? new Uint8Array(m.value) : null,
              headers: headersToStrings(m.headers),
              timestamp: m.timestamp,
            });
          }
          advance(batch.partition, batch.lastOffset());
          return Promise.resolve();
        },
      });
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 60_000);
      const signal = options.signal
        ? AbortSignal.any([options.signal, timeout])
        : timeout;
      await abortable(done.promise, signal);
    } finally {
      await consumer.disconnect();
    }
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
  const consumer: Consumer = kafka.consumer({
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
  const crashed = Promise.withResolvers<Error>();
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) crashed.resolve(e.payload.error);
  });
  // A fetch that held only transaction markers (or aborted records) is resolved by kafkajs
  // without calling eachBatch; commit past it so a caught-up group shows zero lag. kafkajs emits
  // this with batchSize 0 only for such filtered fetches; firstOffset is null when no record at
  // or after the fetched offset came back, and then there is nothing to skip.
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
  await consumer.connect();
  await consumer.subscribe({ topic: options.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.concurrency ?? 3,
    eachBatch: async (
      {
        batch,
        heartbeat,
        isRunning,
        isStale,
        commitOffsetsIfNecessary,
        resolveOffset,
      },
    ) => {
      if (batch.isEmpty() || !isRunning() || isStale()) return;
      const records: InRecord[] = batch.messages.map((m) => ({
        topic: batch.topic,
        partition: batch.partition,
        offset: m.offset,
        key: m.key ?? null, // a Buffer is a Uint8Array: no copy
        value: m.value ?? null,
        headers: headersToStrings(m.headers),
        timestamp: m.timestamp,
      }));
      const lost = new AbortController();
      const beat = async () => {
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
    },
  });
  let stopped = false;
  const handle: BatchConsumer = {
    crashed: crashed.promise,
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

/** Options for {@linkcode fetchLag}. */
export interface LagOptions {
  groupId: string;
  topic: string;
}

/**
 * Lag per partition: end offset minus committed offset. A partition with no commit counts from
 * the log start; a commit below the log start (after retention) counts from the log start too.
 */
export async function fetchLag(
  admin: Admin,
  options: LagOptions,
): Promise<PartitionLag[]> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(options.topic),
    admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] }),
  ]);
  const byPartition = new Map<number, string>();
  for (const t of committed) {
    for (const p of t.partitions) byPartition.set(p.partition, p.offset);
  }
  return ends.sort((a, b) => a.partition - b.partition).map((e) => {
    const c = byPartition.get(e.partition);
    const hasCommit = c !== undefined && c !== "-1";
    const from = hasCommit
      ? (BigInt(c) < BigInt(e.low) ? BigInt(e.low) : BigInt(c))
      : BigInt(e.low);
    const lag = BigInt(e.high) - from;
    return {
      partition: e.partition,
      committed: hasCommit ? c : null,
      start: e.low,
      end: e.high,
      lag: (lag < 0n ? 0n : lag).toString(),
    };
  });
}

export type { Admin, Kafka };

function headersToStrings(
  headers: IHeaders | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(",") : v.toString();
  }
  return out;
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
  const admin = kafka.admin();
  await admin.connect();
  let sourceMax = 1_048_588;
  try {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{
        type: 2, // TOPIC
        name: options.sourceTopic,
        configNames: ["max.message.bytes"],
      }],
    });
    const v = res.resources[0]?.configEntries[0]?.configValue;
    if (v && Number(v) > 0) sourceMax = Number(v);
  } catch (err) {
    options.log.warn("cannot read the source topic's max.message.bytes", {
      err,
    });
  } finally {
    await admin.disconnect();
  }
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
  const dlq: DeadLetterProducer = {
    async send(records) {
      if (records.length === 0) return;
      await producer.send({
        topic: options.topic,
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
