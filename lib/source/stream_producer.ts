/** @module Follows EventStreams `recentchange`: dedupe on meta.id, batch, publish with a resumable checkpoint. */
import { type Envelope, StreamEventSchema } from "../schemas/wikimedia.ts";
import type { Logger } from "../core/log.ts";
import type { OutRecord } from "../kafka/client.ts";
import type { PollerStats, Publisher } from "./poller.ts";
import {
  type EventStreamOptions,
  readEventStream,
  type StreamMessage,
} from "./eventstreams.ts";

/** The checkpoint kept under key `eventstreams` in the checkpoint topic. */
export interface StreamCheckpoint {
  v: 1;
  last_event_id: string;
  /** meta.ids of the most recent events, to drop the stream's at-least-once repeats. */
  seen: string[];
  updated_at: string;
}

/** Options for {@linkcode followEventStream}. */
export interface StreamProducerOptions {
  url: string;
  userAgent: string;
  /** Wiki host names (server_name) to keep; `*` keeps all. */
  wikis: string[];
  publisher: Publisher;
  topics: { events: string; checkpoints: string; rejects: string };
  restored?: StreamCheckpoint;
  since?: string;
  log: Logger;
  signal: AbortSignal;
  stats: PollerStats;
  batchSize?: number;
  flushMs?: number;
  seenMax?: number;
  /** Test hook: how the stream is read. */
  read?: (options: EventStreamOptions) => AsyncIterable<StreamMessage>;
}

/** Checkpoint key of the stream source. */
export const STREAM_CHECKPOINT_KEY = "eventstreams";

/**
 * Reads the stream until `signal` aborts. Every `flushMs` (or `batchSize` events) one Kafka
 * transaction publishes the new events, the rejects and the checkpoint (last event id and recent
 * meta.ids), so a restart resumes after the last published event, with repeats dropped.
 */
export async function followEventStream(
  options: StreamProducerOptions,
): Promise<void> {
  const { log, stats, signal } = options;
  const batchSize = options.batchSize ?? 500;
  const flushMs = options.flushMs ?? 1000;
  const seenMax = options.seenMax ?? 20_000;
  const all = options.wikis.includes("*");
  const wanted = new Set(options.wikis);
  const seen = new Set(options.restored?.seen ?? []);
  let lastId = options.restored?.last_event_id ?? "";
  let committedId = lastId;
  let pending: OutRecord[] = [];
  let pendingIds = new Set<string>();
  let firstAt = 0;

  async function flush() {
    if (pending.length === 0 && lastId === committedId) return;
    for (const id of pendingIds) seen.add(id);
    while (seen.size > seenMax) seen.delete(seen.values().next().value!);
    const checkpoint: StreamCheckpoint = {
      v: 1,
      last_event_id: lastId,
      seen: [...seen],
      updated_at: new Date().toISOString(),
    };
    const records = [...pending, {
      topic: options.topics.checkpoints,
      key: STREAM_CHECKPOINT_KEY,
      value: JSON.stringify(checkpoint),
    }];
    const events =
      pending.filter((r) => r.topic === options.topics.events).length;
    await options.publisher.publish(records);
    stats.published += events;
    stats.rejected += pending.length - events;
    stats.lastSuccessMs = Date.now();
    committedId = lastId;
    if (events > 0) {
      log.info("published", {
        rows: events,
        rejected: pending.length - events,
        last_event_id: lastId,
      });
    }
    pending = [];
    pendingIds = new Set();
    firstAt = 0;
  }

  const read = options.read ?? readEventStream;
  const iterator = read({
    url: options.url,
    userAgent: options.userAgent,
    lastEventId: lastId || undefined,
    since: options.since,
    log,
    signal,
    onReconnect: (reason) => {
      const kind = reason.startsWith("no data")
        ? "stream_idle"
        : "stream_reconnect";
      stats.apiErrors[kind] = (stats.apiErrors[kind] ?? 0) + 1;
    },
  })[Symbol.asyncIterator]();
  let next = iterator.next();
  log.info("following event stream", {
    url: options.url,
    wikis: options.wikis,
    resumed: Boolean(lastId),
  });
  try {
    while (!signal.aborted) {
      const wait = firstAt
        ? Math.max(0, firstAt + flushMs - Date.now())
        : flushMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<"tick">((r) =>
        timer = setTimeout(() => r("tick"), wait)
      );
      const got = await Promise.race([next, tick]);
      clearTimeout(timer);
      if (got === "tick") {
        await flush();
        continue;
      }
      if (got.done) break;
      next = iterator.next();
      stats.polls++;
      handle(got.value);
      if (!firstAt) firstAt = Date.now();
      if (pending.length >= batchSize) await flush();
    }
  } finally {
    if (!signal.aborted) await flush();
    await iterator.return?.(undefined);
  }

  function handle(msg: StreamMessage) {
    lastId = msg.id;
    let json: unknown;
    try {
      json = JSON.parse(msg.data);
    } catch {
      pending.push(reject(msg.data, "not_json"));
      return;
    }
    const parsed = StreamEventSchema.safeParse(json);
    if (!parsed.success) {
      pending.push(
        reject(
          json,
          parsed.error.issues.slice(0, 3).map((i) =>
            `${i.path.join(".")}: ${i.message}`
          ).join("; "),
        ),
      );
      return;
    }
    const e = parsed.data;
    if (!all && !wanted.has(e.server_name)) return;
    if (seen.has(e.meta.id) || pendingIds.has(e.meta.id)) {
      stats.duplicates++;
      return;
    }
    pendingIds.add(e.meta.id);
    const envelope: Envelope = {
      v: 1,
      source: "eventstreams",
      wiki: e.wiki,
      server_name: e.server_name,
      fetched_at: new Date().toISOString(),
      row: json as Record<string, unknown>,
    };
    const key = e.id !== null && e.id !== undefined
      ? `${e.wiki}:${e.title ?? `rc${e.id}`}`
      : `${e.wiki}:${e.meta.id}`;
    pending.push({
      topic: options.topics.events,
      key,
      value: JSON.stringify(envelope),
      headers: { wiki: e.wiki, meta_id: e.meta.id },
    });
    stats.lastEventMs = e.timestamp * 1000;
  }

  function reject(row: unknown, reason: string): OutRecord {
    return {
      topic: options.topics.rejects,
      key: "eventstreams:reject",
      value: JSON.stringify({
        v: 1,
        source: "eventstreams",
        reason,
        fetched_at: new Date().toISOString(),
        row,
      }),
      headers: { reason: "bad_event" },
    };
  }
}
