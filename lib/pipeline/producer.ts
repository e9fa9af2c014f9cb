/** @module Wires the producer: topics, transactional publisher, restored checkpoints, one poller per wiki. */
import type { Config } from "../core/config.ts";
import type { CheckpointValue } from "../source/cursor.ts";
import {
  createKafka,
  createTransactionalPublisher,
  ensureTopics,
  kafkaSecurity,
  readCompacted,
} from "../kafka/client.ts";
import type { Logger } from "../core/log.ts";
import {
  newPollerStats,
  type PollerStats,
  pollWiki,
} from "../source/poller.ts";
import {
  createWikimediaClient,
  type RecentChangesSource,
} from "../source/action_api.ts";
import type { CheckResult } from "../http/app.ts";
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

/** Options for {@linkcode startProducer}. */
export interface ProducerOptions {
  log: Logger;
  signal: AbortSignal;
  since?: string;
  until?: string;
  source?: RecentChangesSource;
  /** Replaces every wait (backoff and poll interval); tests pass a faster one. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A running producer. */
export interface ProducerService {
  /** Resolves when every wiki is done (`--until`) or the signal aborted. */
  done: Promise<void>;
  stats: Map<string, PollerStats>;
  health(): CheckResult;
  ready(): Promise<CheckResult>;
  close(): Promise<void>;
}

/** Starts polling every configured wiki; a failed Kafka connect is fatal (throws). */
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
  await ensureTopics(kafka, [
    { topic: topics.events, partitions: config.KAFKA_PARTITIONS },
    {
      topic: topics.checkpoints,
      partitions: 1,
      config: { "cleanup.policy": "compact" },
    },
    { topic: topics.rejects, partitions: 1 },
  ]);
  // Connecting first fences an earlier instance and aborts its open transaction, so the
  // checkpoints read next are final.
  const publisher = await createTransactionalPublisher(kafka, {
    transactionalId: config.KAFKA_TRANSACTIONAL_ID,
    log,
  });
  const restored = new Map<string, CheckpointValue>();
  let streamCheckpoint: StreamCheckpoint | undefined;
  const stored = await readCompacted(kafka, topics.checkpoints, {
    clientId: config.KAFKA_CLIENT_ID,
    log,
    signal: options.signal,
  });
  for (const [key, value] of stored) {
    try {
      const v = JSON.parse(value);
      if (
        key === STREAM_CHECKPOINT_KEY && v.v === 1 &&
        typeof v.last_event_id === "string"
      ) {
        streamCheckpoint = v;
      } else if (
        v.v === 1 && typeof v.last_ts === "string" && Array.isArray(v.seen)
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
  const stats = new Map<string, PollerStats>();
  const started = Date.now();
  let done: Promise<void>;
  if (config.SOURCE === "eventstreams") {
    const s = newPollerStats();
    stats.set("eventstreams", s);
    done = followEventStream({
      url: config.EVENTSTREAMS_URL,
      userAgent: config.USER_AGENT,
      wikis: config.WIKIS,
      publisher,
      topics,
      restored: streamCheckpoint,
      since: options.since,
      log,
      signal: options.signal,
      stats: s,
    }).catch((err: unknown) => {
      if (!options.signal.aborted) throw err;
    });
  } else {
    done = pollAll();
  }

  function pollAll(): Promise<void> {
    const progress = options.since ? terminalProgress() : undefined;
    const source = options.source ?? createWikimediaClient({
      apiUrlTemplate: config.MEDIAWIKI_API_URL,
      userAgent: config.USER_AGENT,
      timeoutMs: config.HTTP_TIMEOUT_MS,
    });
    return Promise.all(config.WIKIS.map((host) => {
      const s = newPollerStats();
      stats.set(host, s);
      return pollWiki({
        host,
        source,
        publisher,
        topics,
        restored,
        overlapMs: config.POLL_OVERLAP_SECONDS * 1000,
        pollIntervalMs: config.POLL_INTERVAL_MS,
        since: options.since,
        until: options.until,
        log,
        signal: options.signal,
        stats: s,
        sleep: options.sleep,
        progress,
      }).catch((err) => {
        if (!options.signal.aborted) throw err;
      });
    })).then(() => {});
  }

  // A poll may legitimately wait out long backoffs (capped at 5 min), so never less than 3 intervals.
  const stallMs = Math.max(
    config.HEALTH_STALL_SECONDS * 1000,
    config.POLL_INTERVAL_MS * 3,
  );
  return {
    done,
    stats,
    health() {
      const stalled = [...stats].filter(([, s]) =>
        Date.now() - (s.lastSuccessMs || started) > stallMs
      ).map(([h]) => h);
      return stalled.length === 0 ? { ok: true } : {
        ok: false,
        reason: `No successful poll for ${stallMs / 1000} s`,
        details: { wikis: stalled },
      };
    },
    async ready() {
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.fetchTopicMetadata({ topics: [topics.events] });
        return { ok: true };
      } catch (err) {
        return {
          ok: false,
          reason: `Kafka metadata unavailable: ${(err as Error).name}`,
        };
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
    async close() {
      await done.catch(() => {});
      await publisher.disconnect();
    },
  };
}
