/** @module Follows EventStreams `recentchange`: dedupe on meta.id, batch, publish with a resumable checkpoint. */
import type { Logger } from "../core/log.ts";
import type { OutRecord } from "../kafka/client.ts";
import type { PollerStats, Publisher } from "./poller.ts";
import {
  type EventStreamOptions,
  readEventStream,
  type StreamMessage,
} from "./eventstreams.ts";
import {
  decodeStreamEvent,
  eventRecord,
  rejectRecord,
} from "./_stream_records.ts";

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
  const batch = new StreamBatch(options);
  const iterator = openEventStream(options, batch.lastId);
  let next = iterator.next();
  log.info("following event stream", {
    url: options.url,
    wikis: options.wikis,
    resumed: Boolean(batch.lastId),
  });
  try {
    while (!signal.aborted) {
      const got = await nextOrTick(next, batch.msUntilFlush(flushMs));
      if (got === "tick") {
        await batch.flush();
        continue;
      }
      if (got.done) break;
      next = iterator.next();
      stats.polls++;
      batch.add(got.value);
      if (batch.size >= batchSize) await batch.flush();
    }
  } finally {
    if (!signal.aborted) await batch.flush();
    await iterator.return?.(undefined);
  }
}

/** Starts reading the stream after `lastId`, counting reconnects (idle ones apart) in stats. */
function openEventStream(
  options: StreamProducerOptions,
  lastId: string,
): AsyncIterator<StreamMessage> {
  const { log, stats, signal } = options;
  const read = options.read ?? readEventStream;
  return read({
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
}

/** The next message, or `"tick"` when `waitMs` passes first. */
async function nextOrTick<T>(
  next: Promise<T>,
  waitMs: number,
): Promise<T | "tick"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = new Promise<"tick">((r) =>
    timer = setTimeout(() => r("tick"), waitMs)
  );
  const got = await Promise.race([next, tick]);
  clearTimeout(timer);
  return got;
}

/**
 * The events not yet published, and what the checkpoint remembers: the last event id and the
 * meta.ids already published (the newest `seenMax`).
 */
class StreamBatch {
  #options: StreamProducerOptions;
  #seenMax: number;
  #all: boolean;
  #wanted: Set<string>;
  #seen: Set<string>;
  #lastId: string;
  #committedId: string;
  #pending: OutRecord[] = [];
  #pendingIds = new Set<string>();
  #firstAt = 0;

  constructor(options: StreamProducerOptions) {
    this.#options = options;
    this.#seenMax = options.seenMax ?? 20_000;
    this.#all = options.wikis.includes("*");
    this.#wanted = new Set(options.wikis);
    this.#seen = new Set(options.restored?.seen ?? []);
    this.#lastId = options.restored?.last_event_id ?? "";
    this.#committedId = this.#lastId;
  }

  /** The id of the last message handled (published or not). */
  get lastId(): string {
    return this.#lastId;
  }

  /** Records waiting for the next flush. */
  get size(): number {
    return this.#pending.length;
  }

  /** How long until the batch is due: `flushMs` after its first message, or a full `flushMs`. */
  msUntilFlush(flushMs: number): number {
    return this.#firstAt
      ? Math.max(0, this.#firstAt + flushMs - Date.now())
      : flushMs;
  }

  /** Takes one message: a reject, a new event, or nothing (other wiki, repeat). */
  add(msg: StreamMessage): void {
    this.#handle(msg);
    if (!this.#firstAt) this.#firstAt = Date.now();
  }

  /** Publishes the pending records with the checkpoint in one transaction, if anything moved. */
  async flush(): Promise<void> {
    const { publisher, stats, log } = this.#options;
    if (this.#pending.length === 0 && this.#lastId === this.#committedId) {
      return;
    }
    const pending = this.#pending;
    const records = [...pending, this.#checkpointRecord()];
    const events =
      pending.filter((r) => r.topic === this.#options.topics.events).length;
    await publisher.publish(records);
    stats.published += events;
    stats.rejected += pending.length - events;
    stats.lastSuccessMs = Date.now();
    this.#committedId = this.#lastId;
    if (events > 0) {
      log.info("published", {
        rows: events,
        rejected: pending.length - events,
        last_event_id: this.#lastId,
      });
    }
    this.#pending = [];
    this.#pendingIds = new Set();
    this.#firstAt = 0;
  }

  #handle(msg: StreamMessage): void {
    const { topics, stats } = this.#options;
    this.#lastId = msg.id;
    const decoded = decodeStreamEvent(msg.data);
    if ("reason" in decoded) {
      this.#pending.push(rejectRecord(topics.rejects, decoded));
      return;
    }
    const { event: e, json } = decoded;
    if (!this.#all && !this.#wanted.has(e.server_name)) return;
    if (this.#seen.has(e.meta.id) || this.#pendingIds.has(e.meta.id)) {
      stats.duplicates++;
      return;
    }
    this.#pendingIds.add(e.meta.id);
    this.#pending.push(eventRecord(topics.events, e, json));
    stats.lastEventMs = e.timestamp * 1000;
  }

  /** Adds the pending ids to the seen-set (trimmed to `seenMax`) and returns its checkpoint. */
  #checkpointRecord(): OutRecord {
    for (const id of this.#pendingIds) this.#seen.add(id);
    while (this.#seen.size > this.#seenMax) {
      this.#seen.delete(this.#seen.values().next().value!);
    }
    const checkpoint: StreamCheckpoint = {
      v: 1,
      last_event_id: this.#lastId,
      seen: [...this.#seen],
      updated_at: new Date().toISOString(),
    };
    return {
      topic: this.#options.topics.checkpoints,
      key: STREAM_CHECKPOINT_KEY,
      value: JSON.stringify(checkpoint),
    };
  }
}
