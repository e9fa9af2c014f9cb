/** @module Wires the producer: topics, transactional publisher, restored checkpoints, one poller per wiki. */
import type { Config } from "../core/config.ts";
import type { CheckpointValue, CheckpointValueV1 } from "../source/cursor.ts";
import { createKafka, type Kafka, kafkaSecurity } from "../kafka/client.ts";
import { CHECKPOINT_TOPIC_CONFIG, ensureTopics } from "../kafka/topics.ts";
import { kafkaReadiness } from "./_producer_readiness.ts";
import {
  createTransactionalPublisher,
  reportingPublisher,
  type TransactionalPublisher,
} from "../kafka/publisher.ts";
import { readCompacted } from "../kafka/compacted.ts";
import { type Logger, resolveLogFormat } from "../core/log.ts";
import {
  newPollerStats,
  type PollerStats,
  pollWiki,
} from "../source/poller.ts";
import {
  createWikimediaClient,
  type RecentChangesSource,
} from "../source/action_api.ts";
import type { CheckResult, SourceStatus } from "../http/app.ts";
import { producerHealth, sourceStatuses } from "./_producer_health.ts";
import { terminalProgress } from "../core/progress.ts";
import {
  followEventStream,
  STREAM_CHECKPOINT_KEY,
  type StreamCheckpoint,
} from "../source/stream_producer.ts";

/** Topic names derived from KAFKA_TOPIC. */
export function topicNames(topic: string) {
  return {
    events: topic,
    checkpoints: `${topic}.checkpoints`,
    rejects: `${topic}.rejects`,
    dlq: `${topic}.dlq`,
  };
}

/**
 * The transactional id of a run: KAFKA_TRANSACTIONAL_ID for the live producer; a backfill
 * (`--until`) gets its own per range, so it neither fences nor is fenced by the live producer.
 */
export function transactionalIdFor(
  base: string,
  range: { since?: string; until?: string },
): string {
  if (!range.until) return base;
  const tag = `${range.since ?? ""}_${range.until}`.replace(/[^0-9TZ_]/g, "");
  return `${base}-backfill-${tag}`;
}

/** Options for {@linkcode startProducer}. */
export interface ProducerOptions {
  log: Logger;
  signal: AbortSignal;
  since?: string;
  until?: string;
  source?: RecentChangesSource;
  /** Replaces every wait (backoff and poll interval); tests pass a faster one. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Per-wiki counters to bump (kept across restarts); fresh ones by default. */
  stats?: Map<string, PollerStats>;
  /** Told when a publish fails (false) and when one succeeds again (true). */
  onKafka?(up: boolean): void;
}

/** A running producer. */
export interface ProducerService {
  /** Resolves when every wiki is done (`--until`) or the signal aborted. */
  done: Promise<void>;
  stats: Map<string, PollerStats>;
  /** Unhealthy once a wiki stalls; details list every wiki's source status. */
  health(): CheckResult;
  /** Each wiki's last success, last error and retry (for the dashboard). */
  sources(): SourceStatus[];
  ready(): Promise<CheckResult>;
  close(): Promise<void>;
}

/** Starts polling every configured wiki; a failed Kafka connect throws (nothing left open). */
export async function startProducer(
  config: Config,
  options: ProducerOptions,
): Promise<ProducerService> {
  const log = options.log.with({ component: "producer" });
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    ...kafkaSecurity(config),
    clientId: `${config.KAFKA_CLIENT_ID}-producer`,
    log,
  });
  const topics = topicNames(config.KAFKA_TOPIC);
  await ensureProducerTopics(kafka, topics, config.KAFKA_PARTITIONS);
  // Connecting first claims the transactional id: that fences an earlier instance and aborts
  // its open transaction, so the checkpoints read next are final.
  const publisher = await createTransactionalPublisher(kafka, {
    transactionalId: transactionalIdFor(config.KAFKA_TRANSACTIONAL_ID, options),
    log,
  });
  let checkpoints;
  try {
    checkpoints = await restoreCheckpoints(kafka, topics.checkpoints, {
      clientId: config.KAFKA_CLIENT_ID,
      log,
      signal: options.signal,
    });
  } catch (err) {
    await publisher.disconnect().catch(() => {});
    throw err;
  }
  const stats = options.stats ?? new Map<string, PollerStats>();
  const started = Date.now();
  const run: SourceRun = {
    config,
    options,
    log,
    publisher: reportingPublisher(publisher, options.onKafka),
    topics,
    stats,
  };
  const done = config.SOURCE === "eventstreams"
    ? followStream(run, checkpoints.stream)
    : pollAll(run, checkpoints.wikis);
  return producerService({
    config,
    kafka,
    topics,
    publisher,
    stats,
    done,
    started,
  });
}

/** The topics derived from KAFKA_TOPIC. */
type Topics = ReturnType<typeof topicNames>;

/** What a source needs to run: config, options and the shared publisher and stats. */
interface SourceRun {
  config: Config;
  options: ProducerOptions;
  log: Logger;
  publisher: TransactionalPublisher;
  topics: Topics;
  stats: Map<string, PollerStats>;
}

/** What the running producer is made of. */
interface ServiceParts
  extends Pick<SourceRun, "config" | "topics" | "publisher" | "stats"> {
  kafka: Kafka;
  done: Promise<void>;
  /** When polling started (a wiki without a success yet counts from here). */
  started: number;
}

/** Checkpoints read back from the compacted topic. */
interface RestoredCheckpoints {
  /** By checkpoint key: the wiki id (live) or a backfill's key (the Action API poller). */
  wikis: Map<string, CheckpointValue | CheckpointValueV1>;
  /** The EventStreams position, if one was stored. */
  stream: StreamCheckpoint | undefined;
}

/** Creates the events, checkpoints (compacted) and rejects topics when missing. */
function ensureProducerTopics(
  kafka: Kafka,
  topics: Topics,
  partitions: number,
): Promise<void> {
  return ensureTopics(kafka, [
    { topic: topics.events, partitions },
    {
      topic: topics.checkpoints,
      partitions: 1,
      config: CHECKPOINT_TOPIC_CONFIG,
    },
    { topic: topics.rejects, partitions: 1 },
  ]);
}

/** Reads the checkpoint topic; unknown or unreadable checkpoints are logged and skipped. */
async function restoreCheckpoints(
  kafka: Kafka,
  topic: string,
  options: { clientId: string; log: Logger; signal: AbortSignal },
): Promise<RestoredCheckpoints> {
  const { log } = options;
  const restored = new Map<string, CheckpointValue | CheckpointValueV1>();
  let streamCheckpoint: StreamCheckpoint | undefined;
  const stored = await readCompacted(kafka, topic, options);
  for (const [key, value] of stored) {
    if (key.startsWith("audit:")) continue; // the audit's repair progress
    try {
      const v = JSON.parse(value);
      if (
        key === STREAM_CHECKPOINT_KEY && v.v === 1 &&
        typeof v.last_event_id === "string"
      ) {
        streamCheckpoint = v;
      } else if (
        typeof v.last_ts === "string" &&
        ((v.v === 1 && Array.isArray(v.seen)) ||
          (v.v === 2 && typeof v.seen === "string" && Array.isArray(v.marks)))
      ) {
        restored.set(key, v);
      } else log.warn("ignoring unknown checkpoint", { key });
    } catch (err) {
      log.warn("ignoring unreadable checkpoint", { key, err });
    }
  }
  log.info("checkpoints restored", {
    wikis: [...restored.keys()],
    eventstreams: streamCheckpoint?.last_event_id ?? null,
  });
  return { wikis: restored, stream: streamCheckpoint };
}

/** Follows the EventStreams feed (SOURCE=eventstreams); an abort ends it quietly. */
function followStream(
  run: SourceRun,
  restored: StreamCheckpoint | undefined,
): Promise<void> {
  const { config, options } = run;
  const s = run.stats.get("eventstreams") ?? newPollerStats();
  run.stats.set("eventstreams", s);
  return followEventStream({
    url: config.EVENTSTREAMS_URL,
    userAgent: config.USER_AGENT,
    wikis: config.WIKIS,
    publisher: run.publisher,
    topics: run.topics,
    restored,
    since: options.since,
    log: run.log,
    signal: options.signal,
    stats: s,
    sleep: options.sleep,
  }).catch((err: unknown) => {
    if (!options.signal.aborted) throw err;
  });
}

/** Polls the Action API of every wiki at once; an abort ends each poller quietly. */
function pollAll(
  run: SourceRun,
  restored: Map<string, CheckpointValue | CheckpointValueV1>,
): Promise<void> {
  const { config, options } = run;
  // The bar only beside readable lines: never between JSON lines (those carry `progress`).
  const progress =
    options.since && resolveLogFormat(config.LOG_FORMAT) === "pretty"
      ? terminalProgress()
      : undefined;
  const source = options.source ?? createWikimediaClient({
    apiUrlTemplate: config.MEDIAWIKI_API_URL,
    userAgent: config.USER_AGENT,
    timeoutMs: config.HTTP_TIMEOUT_MS,
  });
  return Promise.all(config.WIKIS.map((host) => {
    const s = run.stats.get(host) ?? newPollerStats();
    run.stats.set(host, s);
    return pollWiki({
      host,
      source,
      publisher: run.publisher,
      topics: run.topics,
      restored,
      overlapMs: config.POLL_OVERLAP_SECONDS * 1000,
      reconcileWindowMs: config.RECONCILE_WINDOW_SECONDS * 1000,
      reconcileIntervalMs: config.RECONCILE_INTERVAL_SECONDS * 1000,
      pollIntervalMs: config.POLL_INTERVAL_MS,
      since: options.since,
      until: options.until,
      log: run.log,
      signal: options.signal,
      stats: s,
      sleep: options.sleep,
      progress,
    }).catch((err) => {
      if (!options.signal.aborted) throw err;
    });
  })).then(() => {});
}

/** The running producer: health from poll progress, readiness from Kafka metadata (one admin). */
function producerService(parts: ServiceParts): ProducerService {
  const { config, kafka, topics, publisher, stats, done, started } = parts;
  const readiness = kafkaReadiness(kafka, topics.events);
  // A poll may legitimately wait out long backoffs (capped at 5 min), so never less than 3 intervals.
  const stallMs = Math.max(
    config.HEALTH_STALL_SECONDS * 1000,
    config.POLL_INTERVAL_MS * 3,
  );
  const watch = { stats, started, stallMs };
  return {
    done,
    stats,
    health: () => producerHealth(watch),
    sources: () => sourceStatuses(watch),
    ready: readiness.check,
    async close() {
      await done.catch(() => {});
      await readiness.close();
      await publisher.disconnect();
    },
  };
}
