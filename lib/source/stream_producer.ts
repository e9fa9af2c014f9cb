/** @module Follows EventStreams `recentchange`: dedupe on meta.id, batch, publish with a resumable checkpoint. */
import type { Logger } from "../core/log.ts";
import { sleep as defaultSleep } from "../core/retry.ts";
import { PollBackoff } from "./_poll_backoff.ts";
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
  /** Most events held before reading pauses for the next flush. */
  batchSize?: number;
  /** Least time between two transactions (and so between two checkpoints). */
  flushMs?: number;
  seenMax?: number;
  /** Waits of the publish backoff; tests pass a faster one. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Test hook: how the stream is read. */
  read?: (options: EventStreamOptions) => AsyncIterable<StreamMessage>;
}

/** Checkpoint key of the stream source. */
export const STREAM_CHECKPOINT_KEY = "eventstreams";

/** Upper bound of a stream checkpoint's JSON, in characters (Kafka's limit is far above). */
const MAX_CHECKPOINT_CHARS = 60_000;

/**
 * Reads the stream until `signal` aborts. At most once per `flushMs`, and only when something
 * changed, one Kafka transaction publishes the new events, the rejects and the checkpoint (last
 * event id and recent meta.ids), so a restart resumes after the last published event, with
 * repeats dropped. A failed publish is retried with backoff (like the poller), keeping the batch;
 * only a fenced publisher or the abort ends the loop.
 */
export async function followEventStream(
  options: StreamProducerOptions,
): Promise<void> {
  const { log, stats, signal } = options;
  const batchSize = options.batchSize ?? 500;
  const flushMs = options.flushMs ?? 1000;
  const sleep = options.sleep ?? defaultSleep;
  const backoff = new PollBackoff({
    host: "eventstreams",
    log,
    signal,
    stats,
    sleep,
  });
  const batch = new StreamBatch(options);
  const flush = async () => {
    if (
      await batch.flush().then(
        () => true,
        (err) => backoff.failed(err).then(() => false),
      )
    ) {
      backoff.reset();
    }
  };
  const iterator = openEventStream(options, batch.lastId);
  let next = iterator.next();
  log.info("following event stream", {
    url: options.url,
    wikis: options.wikis,
    resumed: Boolean(batch.lastId),
  });
  try {
    while (!signal.aborted) {
      if (batch.size >= batchSize) {
        // Full: stop reading until the next flush is allowed.
        await sleep(batch.msUntilFlush(flushMs), signal).catch(() => {});
        await flush();
        continue;
      }
      const got = await nextOrTick(next, batch.msUntilFlush(flushMs));
      if (got === "tick") {
        await flush();
        continue;
      }
      if (got.done) break;
      next = iterator.next();
      stats.polls++;
      batch.add(got.value);
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
      if (kind === "stream_reconnect") {
        stats.lastError = {
          atMs: Date.now(),
          name: "StreamReconnect",
          message: reason.slice(0, 300),
        };
      }
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
  /** When the last transaction committed (0: none yet). */
  #flushedAt = 0;

  constructor(options: StreamProducerOptions) {
    this.#options = options;
    this.#seenMax = options.seenMax ?? 1200;
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

  /** How long until a flush is allowed: `flushMs` after the last one (a full `flushMs` when idle). */
  msUntilFlush(flushMs: number): number {
    if (!this.#changed()) return flushMs;
    return Math.max(0, this.#flushedAt + flushMs - Date.now());
  }

  /** Takes one message: a reject, a new event, or nothing (other wiki, repeat). */
  add(msg: StreamMessage): void {
    this.#handle(msg);
  }

  /** Publishes the pending records with the checkpoint in one transaction, if anything moved. */
  async flush(): Promise<void> {
    const { publisher, stats, log } = this.#options;
    if (!this.#changed()) return;
    const pending = this.#pending;
    const records = [...pending, this.#checkpointRecord()];
    const events =
      pending.filter((r) => r.topic === this.#options.topics.events).length;
    await publisher.publish(records);
    stats.published += events;
    stats.rejected += pending.length - events;
    stats.lastSuccessMs = Date.now();
    this.#flushedAt = stats.lastSuccessMs;
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
  }

  #changed(): boolean {
    return this.#pending.length > 0 || this.#lastId !== this.#committedId;
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
    let value = JSON.stringify(checkpoint);
    while (value.length > MAX_CHECKPOINT_CHARS && checkpoint.seen.length > 0) {
      // Long ids: remember fewer (a forgotten repeat is dropped by the sink).
      checkpoint.seen = checkpoint.seen.slice(
        Math.ceil(checkpoint.seen.length / 10),
      );
      this.#seen = new Set(checkpoint.seen);
      value = JSON.stringify(checkpoint);
    }
    return {
      topic: this.#options.topics.checkpoints,
      key: STREAM_CHECKPOINT_KEY,
      value,
    };
  }
}
