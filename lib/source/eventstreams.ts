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
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? defaultSleep;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  let lastId = options.lastEventId ?? "";
  let failures = 0;
  while (!options.signal.aborted) {
    const parser = new SseParser();
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), idleMs);
    const signal = AbortSignal.any([options.signal, idle.signal]);
    let reason = "stream ended";
    let lastErr: unknown;
    let received = 0;
    try {
      const url = new URL(options.url);
      if (!lastId && options.since) {
        url.searchParams.set("since", options.since);
      }
      const headers: Record<string, string> = {
        accept: "text/event-stream",
        "user-agent": options.userAgent,
        "api-user-agent": options.userAgent,
      };
      if (lastId) headers["last-event-id"] = lastId;
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
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), idleMs);
        for (const ev of parser.push(chunk)) {
          if (ev.event !== "message") continue;
          failures = 0;
          received++;
          lastId = ev.id;
          yield { id: ev.id, data: ev.data };
        }
      }
    } catch (err) {
      if (options.signal.aborted) return;
      reason = idle.signal.aborted
        ? "no data for too long"
        : (err as Error).message;
      lastErr = err;
      failures++;
    } finally {
      clearTimeout(timer);
    }
    if (!lastErr && received === 0) failures++; // closed at once: back off, never spin
    parser.reset();
    const delay = Math.max(
      parser.retryMs ?? 0,
      failures === 0
        ? 0
        : backoffDelay(failures - 1, { minTimeout: 1000, maxTimeout: 60_000 }),
    );
    options.log.warn("event stream reconnecting", {
      reason,
      delay_ms: delay,
      last_event_id: lastId,
    });
    options.onReconnect?.(reason);
    await sleep(Math.max(delay, retryAfterOf(lastErr)), options.signal).catch(
      () => {},
    );
  }
}
