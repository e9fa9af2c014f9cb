/** @module An EventStreams (SSE) reader: resume with Last-Event-ID, reconnect with backoff. */
import { SseParser } from "./sse.ts";
import { UpstreamError } from "../core/errors.ts";
import {
  backoffDelay,
  retryAfterOf,
  sleep as defaultSleep,
} from "../core/retry.ts";
import type { Logger } from "../core/log.ts";

/** One event with the id to resume after it. */
export interface StreamMessage {
  id: string;
  data: string;
}

/** Options for {@linkcode readEventStream}. */
export interface EventStreamOptions {
  url: string;
  userAgent: string;
  /** Resume after this event id (the `id:` of the last event durably processed). */
  lastEventId?: string;
  /** On a first start without an id: begin at this time (`?since=`). */
  since?: string;
  /** Reconnect when nothing (not even a keepalive) arrived for this long. */
  idleTimeoutMs?: number;
  log: Logger;
  signal: AbortSignal;
  onReconnect?: (reason: string) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Yields every `message` event, forever: the connection is re-opened (with the id of the last
 * event yielded, and never a second one at once) after an end, an error or silence, with backoff.
 * A cut-off half event is dropped and re-read after the reconnect.
 */
export async function* readEventStream(
  options: EventStreamOptions,
): AsyncGenerator<StreamMessage> {
  yield* new EventStreamReader(options).messages();
}

/** How one connection ended: why, with which error, after how many messages. */
interface ConnectionEnd {
  reason: string;
  lastErr: unknown;
  received: number;
}

/** The reconnect loop of {@linkcode readEventStream}, with the id to resume from. */
class EventStreamReader {
  #options: EventStreamOptions;
  #fetch: typeof fetch;
  #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #idleMs: number;
  #lastId: string;
  #failures = 0;

  constructor(options: EventStreamOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#idleMs = options.idleTimeoutMs ?? 60_000;
    this.#lastId = options.lastEventId ?? "";
  }

  /** Connects, yields, and reconnects after a backoff, until `signal` aborts. */
  async *messages(): AsyncGenerator<StreamMessage> {
    while (!this.#options.signal.aborted) {
      const parser = new SseParser();
      const end = yield* this.#connection(parser);
      if (!end) return;
      await this.#backOff(parser, end);
    }
  }

  /** One connection's messages; resolves to how it ended, or undefined on shutdown. */
  async *#connection(
    parser: SseParser,
  ): AsyncGenerator<StreamMessage, ConnectionEnd | undefined> {
    const idleMs = this.#idleMs;
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), idleMs);
    const signal = AbortSignal.any([this.#options.signal, idle.signal]);
    const end: ConnectionEnd = {
      reason: "stream ended",
      lastErr: undefined,
      received: 0,
    };
    try {
      // Read through the Response itself: with only its body kept, aborting the signal did not
      // end the read on Deno 2.9.6 (the follower then never stopped).
      const res = await this.#open(signal);
      for await (
        const chunk of res.body!.pipeThrough(new TextDecoderStream())
      ) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), idleMs);
        for (const ev of parser.push(chunk)) {
          if (ev.event !== "message") continue;
          this.#failures = 0;
          end.received++;
          this.#lastId = ev.id;
          yield { id: ev.id, data: ev.data };
        }
      }
    } catch (err) {
      if (this.#options.signal.aborted) return undefined;
      end.reason = idle.signal.aborted
        ? "no data for too long"
        : (err as Error).message;
      end.lastErr = err;
      this.#failures++;
    } finally {
      clearTimeout(timer);
    }
    return end;
  }

  /** Opens the stream after the last id (or `since` on a first start); a bad status throws. */
  async #open(signal: AbortSignal): Promise<Response> {
    const { userAgent, since } = this.#options;
    const url = new URL(this.#options.url);
    if (!this.#lastId && since) url.searchParams.set("since", since);
    const headers: Record<string, string> = {
      accept: "text/event-stream",
      "user-agent": userAgent,
      "api-user-agent": userAgent,
    };
    if (this.#lastId) headers["last-event-id"] = this.#lastId;
    const doFetch = this.#fetch; // called unbound, like the global `fetch`
    const res = await doFetch(url, { headers, signal });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new UpstreamError(
        res.status,
        `http_${res.status}`,
        `Cannot open event stream: status ${res.status}`,
        {
          retryAfterMs:
            parseInt(res.headers.get("retry-after") ?? "", 10) * 1000 ||
            undefined,
        },
      );
    }
    return res;
  }

  /** Logs the reconnect and waits: the server's `retry:`, the backoff or Retry-After, longest. */
  async #backOff(parser: SseParser, end: ConnectionEnd): Promise<void> {
    const { log, signal } = this.#options;
    if (!end.lastErr && end.received === 0) this.#failures++; // closed at once: back off, never spin
    parser.reset();
    const failures = this.#failures;
    const delay = Math.max(
      parser.retryMs ?? 0,
      failures === 0
        ? 0
        : backoffDelay(failures - 1, { minTimeout: 1000, maxTimeout: 60_000 }),
    );
    log.warn("event stream reconnecting", {
      reason: end.reason,
      delay_ms: delay,
      last_event_id: this.#lastId,
    });
    this.#options.onReconnect?.(end.reason);
    const sleep = this.#sleep;
    await sleep(Math.max(delay, retryAfterOf(end.lastErr)), signal).catch(
      () => {},
    );
  }
}
