/** @module Wires the consumer: migrations, topics, the sink and the batch consumer; lag and idle exit. */
import type { Config } from "../core/config.ts";
import { connectDb, type Sql } from "../sink/db.ts";
import { createMonitorDb, type MonitorDb } from "../sink/monitor_db.ts";
import { migrate } from "../sink/migrate.ts";
import {
  type Housekeeper,
  type HousekeepingStats,
  startHousekeeping,
} from "../sink/housekeeping.ts";
import {
  type Admin,
  createKafka,
  type Kafka,
  kafkaSecurity,
} from "../kafka/client.ts";
import { ensureTopics } from "../kafka/topics.ts";
import {
  createDeadLetterProducer,
  type DeadLetterProducer,
} from "../kafka/dead_letters.ts";
import { fetchLag, type PartitionLag } from "../kafka/lag.ts";
import { type RetentionLoss, RetentionWatch } from "./_retention.ts";
import {
  type BatchConsumer,
  runBatchConsumer,
} from "../kafka/batch_consumer.ts";
import type { Logger } from "../core/log.ts";
import { createSink, type Sink } from "../sink/sink.ts";
import { groupWrites } from "../sink/group_writes.ts";
import {
  type ConsumerStats,
  createBatchHandler,
  newConsumerStats,
} from "../sink/batch_handler.ts";
import { topicNames } from "./producer.ts";
import type { CheckResult } from "../http/app.ts";
import {
  createLagReporter,
  dependenciesReady,
  monitorCheck,
  type Progress,
  stallCheck,
} from "./_consumer_health.ts";

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
  /** Partition housekeeping (months ahead, retention) every this long (default 1 h). */
  housekeepingIntervalMs?: number;
  /** Called after each batch is written (metrics): record count and milliseconds taken. */
  onBatch?(records: number, ms: number): void;
  /** Counters to bump (kept across restarts); fresh ones by default. */
  stats?: ConsumerStats;
  /** Housekeeping counters to bump (kept across restarts); fresh ones by default. */
  housekeepingStats?: HousekeepingStats;
  /** Told when a database write fails (false) and when one succeeds again (true). */
  onDatabase?(up: boolean): void;
}

/** The `/lag` report. */
export interface LagReport {
  group: string;
  topic: string;
  partitions: PartitionLag[];
  total_lag: string;
  newest_event_time: string | null;
  time_lag_seconds: number | null;
  /** Partitions whose committed offset fell below the log start (records never written). */
  lost_to_retention: RetentionLoss[];
}

/** A running consumer. */
export interface ConsumerService {
  /** Resolves on idle exit, on abort, or rejects when the consumer crashed for good. */
  done: Promise<void>;
  stats: ConsumerStats;
  /** The partition housekeeping's counters. */
  housekeeping: HousekeepingStats;
  /** The consumer's own pool (migrations, housekeeping). */
  sql: Sql;
  /** The HTTP side's own pool (dashboard, readiness, lag), with short timeouts. */
  monitor: MonitorDb;
  lag(): Promise<LagReport>;
  health(): CheckResult;
  ready(): Promise<CheckResult>;
  close(): Promise<void>;
}

/** Starts consuming into PostgreSQL; on failure closes what it opened and throws. */
export async function startConsumer(
  config: Config,
  options: ConsumerOptions,
): Promise<ConsumerService> {
  const log = options.log.with({ component: "consumer" });
  const opened: (() => Promise<unknown>)[] = [];
  try {
    const sql = connectDb(config.DATABASE_URL, { schema: options.schema });
    opened.push(() => sql.end({ timeout: 5 }));
    await migrate(sql, { log });
    const monitor = createMonitorDb(config.DATABASE_URL, {
      schema: options.schema,
    });
    opened.push(() => monitor.end());
    const housekeeper = startHousekeeping(sql, {
      log: log.with({ component: "housekeeping" }),
      retentionDays: config.RETENTION_DAYS,
      intervalMs: options.housekeepingIntervalMs ?? 3_600_000,
      stats: options.housekeepingStats,
    });
    opened.push(() => housekeeper.stop());
    const { kafka, topic, dlq, admin } = await connectKafka(config, {
      log,
      opened,
    });
    const stats = options.stats ?? newConsumerStats();
    // Before joining: once consumption starts from the log start, the evidence is gone.
    const retention = stats.retention instanceof RetentionWatch
      ? stats.retention
      : new RetentionWatch(topic, log);
    await retention.checkBeforeJoining(
      () => fetchLag(admin, { groupId: config.KAFKA_GROUP_ID, topic }),
      options.signal,
    );
    stats.retention = retention;
    const progress: Progress = {
      lastActivity: Date.now(),
      lastLag: { total: -1n, at: 0 },
    };
    const { sink, consumer } = await startWriting(kafka, config, options, {
      log,
      topic,
      dlq,
      stats,
      progress,
      opened,
    });
    const lag = createLagReporter({
      db: monitor,
      admin,
      groupId: config.KAFKA_GROUP_ID,
      topic,
      stats,
      progress,
      retention,
    });
    const parts: Parts = {
      options,
      log,
      sql,
      monitor,
      topic,
      dlq,
      admin,
      stats,
      started: Date.now(),
      progress,
      sink,
      consumer,
      housekeeper,
    };
    return consumerService(parts, lag);
  } catch (err) {
    for (const close of opened.reverse()) await close().catch(() => {});
    throw err;
  }
}

/** Everything the running consumer is made of. */
interface Parts {
  options: ConsumerOptions;
  log: Logger;
  sql: Sql;
  monitor: MonitorDb;
  /** The events topic. */
  topic: string;
  dlq: DeadLetterProducer;
  admin: Admin;
  stats: ConsumerStats;
  started: number;
  progress: Progress;
  sink: Sink;
  consumer: BatchConsumer;
  housekeeper: Housekeeper;
}

/** Creates the events topic if missing, the dead-letter producer and a connected admin. */
async function connectKafka(
  config: Config,
  { log, opened }: { log: Logger; opened: (() => Promise<unknown>)[] },
): Promise<
  { kafka: Kafka; topic: string; dlq: DeadLetterProducer; admin: Admin }
> {
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
  opened.push(() => dlq.disconnect());
  const admin = kafka.admin();
  opened.push(() => admin.disconnect());
  await admin.connect();
  return { kafka, topic: topics.events, dlq, admin };
}

/** Builds the sink and the batch handler, and joins the group that feeds them. */
async function startWriting(
  kafka: Kafka,
  config: Config,
  options: ConsumerOptions,
  parts: Pick<Parts, "log" | "topic" | "dlq" | "stats" | "progress"> & {
    opened: (() => Promise<unknown>)[];
  },
): Promise<{ sink: Sink; consumer: BatchConsumer }> {
  const { log, topic, dlq, stats, progress, opened } = parts;
  // The sink owns a pool of its own, which it replaces after a connection failure. The partitions'
  // batches are written two transactions at a time, the ones that wait for a slot together.
  const sink = groupWrites(createSink(
    (session) =>
      connectDb(config.DATABASE_URL, {
        schema: options.schema,
        max: 3,
        ...session,
      }),
    {
      log,
      // DeadLetter carries the original key, bytes and the dlq.* headers the DLQ record needs.
      deadLetters: { publish: (d) => dlq.send(d) },
      redactDeletedPages: config.REDACT_DELETED_PAGES,
      times: stats.stages,
    },
  ));
  opened.push(() => sink.close());
  const handle = createBatchHandler({
    sink,
    log,
    signal: options.signal,
    stats,
    onWrite: options.onDatabase,
  });
  const consumer = await runBatchConsumer(kafka, {
    groupId: config.KAFKA_GROUP_ID,
    topic,
    log,
    times: stats.stages,
    prepare: handle.prepare,
    handle: async (batch, ctx) => {
      const t0 = progress.lastActivity = Date.now();
      await handle(batch, ctx);
      options.onBatch?.(batch.records.length, Date.now() - t0);
    },
    onCommitted: () => {
      progress.lastActivity = Date.now();
    },
  });
  log.info("consuming", { topic, group: config.KAFKA_GROUP_ID });
  return { sink, consumer };
}

/** The running consumer: done, lag, health, readiness and teardown in reverse order. */
function consumerService(
  parts: Parts,
  lag: () => Promise<LagReport>,
): ConsumerService {
  const { options, sql, monitor, topic, dlq, admin, stats, sink, consumer } =
    parts;
  const { housekeeper } = parts;
  const done = Promise.race([
    whenAborted(options.signal),
    idleExit(parts, lag),
    consumer.crashed.then((err) => Promise.reject(err)),
  ]);
  const stallMs = options.stallMs ?? 120_000;
  // Keep the lag and the monitoring pool's state behind /healthz fresh when nobody calls.
  const lagTimer = setInterval(() => {
    lag().catch(() => {});
    monitor.use((sql) => sql`select 1`).catch(() => {});
  }, Math.min(15_000, stallMs / 4));
  Deno.unrefTimer(lagTimer);
  return {
    done,
    stats,
    housekeeping: housekeeper.stats,
    sql,
    monitor,
    lag,
    health() {
      const stall = stallCheck(parts.progress, {
        started: parts.started,
        stallMs,
        stats,
      });
      const h = stall.ok ? monitorCheck(monitor, stallMs) : stall;
      const lost = stats.retention?.total ?? 0n;
      if (lost === 0n) return h;
      return { ...h, details: { records_lost_to_retention: lost.toString() } };
    },
    ready() {
      return dependenciesReady(monitor, admin, topic);
    },
    async close() {
      clearInterval(lagTimer);
      await consumer.stop();
      await dlq.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await sink.close();
      await housekeeper.stop();
      await monitor.end();
      await sql.end({ timeout: 5 });
    },
  };
}

/** Resolves on abort; a signal that arrived during start-up has already fired: resolve at once. */
function whenAborted(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true })
    );
}

/** Resolves once caught up (zero lag) and idle for `idleExitMs`; never without that option. */
function idleExit(
  parts: Pick<Parts, "options" | "log" | "progress">,
  lag: () => Promise<LagReport>,
): Promise<void> {
  const { options, log, progress } = parts;
  if (options.idleExitMs === undefined) return new Promise<void>(() => {});
  return (async () => {
    while (!options.signal.aborted) {
      await new Promise((r) => setTimeout(r, 500));
      if (Date.now() - progress.lastActivity < options.idleExitMs!) continue;
      const report = await lag().catch(() => undefined);
      if (report && report.total_lag === "0") {
        log.info("caught up and idle, exiting", {
          idle_ms: options.idleExitMs,
        });
        return;
      }
    }
  })();
}
