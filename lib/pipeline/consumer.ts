/** @module Wires the consumer: migrations, topics, the sink and the batch consumer; lag and idle exit. */
import type { Config } from "../core/config.ts";
import { connectDb, type Sql } from "../sink/db.ts";
import { migrate } from "../sink/migrate.ts";
import {
  createDeadLetterProducer,
  createKafka,
  ensureTopics,
  fetchLag,
  kafkaSecurity,
  type PartitionLag,
  runBatchConsumer,
} from "../kafka/client.ts";
import type { Logger } from "../core/log.ts";
import { createSink } from "../sink/sink.ts";
import {
  type ConsumerStats,
  createBatchHandler,
  newConsumerStats,
} from "../sink/batch_handler.ts";
import { topicNames } from "./producer.ts";
import type { CheckResult } from "../http/app.ts";

/** Options for {@linkcode startConsumer}. */
export interface ConsumerOptions {
  log: Logger;
  signal: AbortSignal;
  /** Finish once caught up (zero lag) and nothing new arrived for this long. */
  idleExitMs?: number;
  /** PostgreSQL schema to use (tests). */
  schema?: string;
  /** Unhealthy after this long without progress while lag is pending (default 120 s). */
  stallMs?: number;
  /** Called after each batch is written (metrics): record count and milliseconds taken. */
  onBatch?(records: number, ms: number): void;
}

/** The `/lag` report. */
export interface LagReport {
  group: string;
  topic: string;
  partitions: PartitionLag[];
  total_lag: string;
  newest_event_time: string | null;
  time_lag_seconds: number | null;
}

/** A running consumer. */
export interface ConsumerService {
  /** Resolves on idle exit, on abort, or rejects when the consumer crashed for good. */
  done: Promise<void>;
  stats: ConsumerStats;
  sql: Sql;
  lag(): Promise<LagReport>;
  health(): CheckResult;
  ready(): Promise<CheckResult>;
  close(): Promise<void>;
}

/** Starts consuming into PostgreSQL. */
export async function startConsumer(
  config: Config,
  options: ConsumerOptions,
): Promise<ConsumerService> {
  const log = options.log.with({ component: "consumer" });
  const sql = connectDb(config.DATABASE_URL, { schema: options.schema });
  await migrate(sql, { log });
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    ...kafkaSecurity(config),
    clientId: `${config.KAFKA_CLIENT_ID}-consumer`,
    log,
  });
  const topics = topicNames(config.KAFKA_TOPIC);
  await ensureTopics(kafka, [{
    topic: topics.events,
    partitions: config.KAFKA_PARTITIONS,
  }]);
  const dlq = await createDeadLetterProducer(kafka, {
    sourceTopic: topics.events,
    topic: topics.dlq,
    log,
  });
  const admin = kafka.admin();
  await admin.connect();
  const stats = newConsumerStats();
  const started = Date.now();
  let lastActivity = Date.now();
  let lastLag: { total: bigint; at: number } = { total: -1n, at: 0 };
  // The sink owns a pool of its own, which it replaces after a connection failure.
  const sink = createSink(
    () => connectDb(config.DATABASE_URL, { schema: options.schema, max: 3 }),
    {
      log,
      // DeadLetter carries the original key, bytes and the dlq.* headers the DLQ record needs.
      deadLetters: { publish: (d) => dlq.send(d) },
    },
  );
  const handle = createBatchHandler({
    sink,
    log,
    signal: options.signal,
    stats,
  });
  const consumer = await runBatchConsumer(kafka, {
    groupId: config.KAFKA_GROUP_ID,
    topic: topics.events,
    log,
    handle: async (batch, ctx) => {
      const t0 = lastActivity = Date.now();
      await handle(batch, ctx);
      options.onBatch?.(batch.records.length, Date.now() - t0);
    },
    onCommitted: () => {
      lastActivity = Date.now();
    },
  });
  log.info("consuming", { topic: topics.events, group: config.KAFKA_GROUP_ID });

  async function lag(): Promise<LagReport> {
    const partitions = await fetchLag(admin, {
      groupId: config.KAFKA_GROUP_ID,
      topic: topics.events,
    });
    const total = partitions.reduce((a, p) => a + BigInt(p.lag), 0n);
    lastLag = { total, at: Date.now() };
    if (total === 0n) lastActivity = Date.now(); // caught up counts as progress
    const [row] = await sql<
      { t: Date | null }[]
    >`select max(event_time) as t from wiki_recent_changes
      where event_time > now() - interval '7 days'`.catch(() => [{ t: null }]);
    const newest = stats.lastEventMs
      ? new Date(stats.lastEventMs)
      : row?.t ?? null;
    return {
      group: config.KAFKA_GROUP_ID,
      topic: topics.events,
      partitions,
      total_lag: total.toString(),
      newest_event_time: newest ? newest.toISOString() : null,
      time_lag_seconds: newest
        ? Math.max(0, Math.round((Date.now() - newest.getTime()) / 1000))
        : null,
    };
  }

  // A signal that arrived during start-up has already fired: resolve at once.
  const stopped = options.signal.aborted
    ? Promise.resolve()
    : new Promise<void>((resolve) =>
      options.signal.addEventListener("abort", () => resolve(), { once: true })
    );
  const idle = options.idleExitMs === undefined
    ? new Promise<void>(() => {})
    : (async () => {
      while (!options.signal.aborted) {
        await new Promise((r) => setTimeout(r, 500));
        if (Date.now() - lastActivity < options.idleExitMs!) continue;
        const report = await lag().catch(() => undefined);
        if (report && report.total_lag === "0") {
          log.info("caught up and idle, exiting", {
            idle_ms: options.idleExitMs,
          });
          return;
        }
      }
    })();
  const done = Promise.race([
    stopped,
    idle,
    consumer.crashed.then((err) => Promise.reject(err)),
  ]);
  const stallMs = options.stallMs ?? 120_000;
  // Keep the lag behind /healthz fresh even when nobody calls /lag.
  const lagTimer = setInterval(
    () => void lag().catch(() => {}),
    Math.min(15_000, stallMs / 4),
  );
  Deno.unrefTimer(lagTimer);
  return {
    done,
    stats,
    sql,
    lag,
    health() {
      const pending = lastLag.total > 0n;
      const since = Date.now() - Math.max(lastActivity, started);
      if (pending && since > stallMs) {
        return {
          ok: false,
          reason: `No batch written for ${
            Math.round(since / 1000)
          } s while lag is ${lastLag.total}`,
        };
      }
      return { ok: true };
    },
    async ready() {
      try {
        await sql`select 1`;
      } catch (err) {
        return {
          ok: false,
          reason: `PostgreSQL unavailable: ${(err as Error).name}`,
        };
      }
      try {
        await admin.fetchTopicMetadata({ topics: [topics.events] });
      } catch (err) {
        return {
          ok: false,
          reason: `Kafka metadata unavailable: ${(err as Error).name}`,
        };
      }
      return { ok: true };
    },
    async close() {
      clearInterval(lagTimer);
      await consumer.stop();
      await dlq.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await sink.close();
      await sql.end({ timeout: 5 });
    },
  };
}
