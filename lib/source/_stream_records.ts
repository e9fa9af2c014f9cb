/** @module EventStreams messages as Kafka records: decode and validate, then the event or reject record. */
import { type StreamEvent, StreamEventSchema } from "../schemas/wikimedia.ts";
import type { Envelope } from "../schemas/envelope.ts";
import type { OutRecord } from "../kafka/client.ts";

/** A message that is not a valid event: what to keep of it, and why. */
export interface BadEvent {
  row: unknown;
  reason: string;
}

/** Parses and validates one message's data. */
export function decodeStreamEvent(
  data: string,
): { event: StreamEvent; json: unknown } | BadEvent {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { row: data, reason: "not_json" };
  }
  const parsed = StreamEventSchema.safeParse(json);
  if (!parsed.success) {
    return {
      row: json,
      reason: parsed.error.issues.slice(0, 3).map((i) =>
        `${i.path.join(".")}: ${i.message}`
      ).join("; "),
    };
  }
  return { event: parsed.data, json };
}

/** The events-topic record of one event, keyed by page title (or meta.id when it has no rc id). */
export function eventRecord(
  topic: string,
  e: StreamEvent,
  json: unknown,
): OutRecord {
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
  return {
    topic,
    key,
    value: JSON.stringify(envelope),
    headers: { wiki: e.wiki, meta_id: e.meta.id },
  };
}

/** The rejects-topic record of a bad event. */
export function rejectRecord(topic: string, bad: BadEvent): OutRecord {
  return {
    topic,
    key: "eventstreams:reject",
    value: JSON.stringify({
      v: 1,
      source: "eventstreams",
      reason: bad.reason,
      fetched_at: new Date().toISOString(),
      row: bad.row,
    }),
    headers: { reason: "bad_event" },
  };
}
