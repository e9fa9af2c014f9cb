/** @module The consumer and the producer under their supervisors, as `consume`, `produce` and `start` run them. */
import type { Config } from "../core/config.ts";
import { dependencyOf } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { createSupervisor } from "../core/supervisor.ts";
import { newConsumerStats } from "../sink/batch_handler.ts";
import { newHousekeepingStats } from "../sink/housekeeping.ts";
import type { PollerStats } from "../source/poller.ts";
import { startConsumer } from "./consumer.ts";
import { startProducer } from "./producer.ts";

/** What both supervisors need. */
export interface SuperviseDeps {
  log: Logger;
  signal: AbortSignal;
}

/** The consumer restarted through outages, with counters that outlive each instance. */
export function superviseConsumer(
  config: Config,
  { log, signal }: SuperviseDeps,
  options: {
    metrics: { observeBatch(records: number, seconds: number): void };
    idleExitMs?: number;
  },
) {
  const stats = newConsumerStats();
  const housekeepingStats = newHousekeepingStats();
  const sup = createSupervisor({
    name: "consumer",
    dependencies: ["kafka", "postgresql"],
    // Raw socket errors come from postgres.js: kafkajs wraps its own.
    dependencyOf: (err) => dependencyOf(err) ?? "postgresql",
    log,
    signal,
    start: (signal) =>
      startConsumer(config, {
        log,
        signal,
        stats,
        housekeepingStats,
        idleExitMs: options.idleExitMs,
        stallMs: config.HEALTH_STALL_SECONDS * 1000,
        onBatch: (n, ms) => options.metrics.observeBatch(n, ms / 1000),
        onDatabase: (up) => sup.mark("postgresql", up),
      }),
  });
  return { sup, stats, housekeepingStats };
}

/** The producer restarted through Kafka outages, with per-wiki counters that outlive each instance. */
export function superviseProducer(
  config: Config,
  { log, signal }: SuperviseDeps,
  range: { since?: string; until?: string },
) {
  const stats = new Map<string, PollerStats>();
  const sup = createSupervisor({
    name: "producer",
    dependencies: ["kafka"],
    dependencyOf: () => "kafka",
    log,
    signal,
    start: (signal) =>
      startProducer(config, {
        log,
        signal,
        stats,
        since: range.since,
        until: range.until,
        onKafka: (up) => sup.mark("kafka", up),
      }),
  });
  return { sup, stats };
}
