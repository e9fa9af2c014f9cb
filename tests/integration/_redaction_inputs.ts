/**
 * @module Inputs of the redaction tests: recorded events and rows, and the few log events no
 * recording holds, each built from a recorded event's shape and marked CONSTRUCTED.
 *
 * Recorded: the 2024 EventStreams capture (edits, one delete/delete) and the 2014/2020 Action API
 * rows (delete/delete, delete/restore, lvwiki edits). No recording holds a delete/revision,
 * delete/event or suppress/* event (tests/fixtures/wikimedia/SOURCES.md, "Known gaps"), and no
 * change was recorded from both sources. Those inputs are CONSTRUCTED: a recorded event with the
 * fields that make it the other kind changed, and the log parameters in the shape MediaWiki writes
 * (RevDelList::getLogParams: `4::type`, `5::ids`, `6::ofield`, `7::nfield`, without the `N::`
 * prefixes in the stream; docs/wikimedia-recentchanges.md 2.3).
 */
import { loadRecordedWikis } from "../fakes/fake_mediawiki.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import type { ReplayedRecord } from "./_consumer_fixture.ts";

type Json = Record<string, unknown>;

const FIXTURES = new URL("../fixtures/wikimedia/", import.meta.url);

/** The 12 recorded 2024 EventStreams events. */
export function recordedStreamEvents(): Json[] {
  return Deno.readTextFileSync(
    new URL(
      "eventstreams_multiwiki_2024-04-26_extracted_from_readme.jsonl",
      FIXTURES,
    ),
  ).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** A recorded stream event by its rcid. */
export function streamEvent(rcid: number): Json {
  const e = recordedStreamEvents().find((x) => x.id === rcid);
  if (!e) throw new Error(`No recorded event with id ${rcid}`);
  return e;
}

/** A recorded Action API row by wiki id and rcid. */
export function apiRow(wiki: string, rcid: number): Json {
  const w = loadRecordedWikis().find((x) => x.wikiid === wiki);
  const row = w?.rows.find((r) => Number((r as Json).rcid) === rcid);
  if (!row) throw new Error(`No recorded ${wiki} row with rcid ${rcid}`);
  return structuredClone(row as Json);
}

/**
 * CONSTRUCTED delete/revision event hiding `nfield` of revision `revId` of `target`: the recorded
 * enwiki delete/delete event (rcid 1769695961) with a new meta.id, rcid and log id, the target's
 * wiki and page, and `log_action: "revision"`.
 */
export function revisionDeletion(
  target: Json,
  options: {
    revId: number;
    nfield: number;
    rcid: number;
    logId: number;
    at: number;
  },
): Json {
  const base = streamEvent(1769695961);
  return {
    ...base,
    meta: { ...(base.meta as Json), id: crypto.randomUUID() },
    id: options.rcid,
    wiki: target.wiki,
    server_name: target.server_name,
    server_url: target.server_url,
    namespace: target.namespace,
    title: target.title,
    timestamp: options.at,
    log_id: options.logId,
    log_action: "revision",
    log_params: {
      type: "revision",
      ids: [String(options.revId)],
      ofield: "0",
      nfield: String(options.nfield),
    },
    comment: "CONSTRUCTED test input: revision deletion",
    parsedcomment: "CONSTRUCTED test input: revision deletion",
    log_action_comment: "changed visibility of a revision",
  };
}

/**
 * CONSTRUCTED EventStreams event for a recorded fv2 API row (the same change as the stream would
 * carry it), mapped field by field as docs/wikimedia-recentchanges.md 2.4 lists: no page id, user
 * id, tags or sha1; a fresh meta.id.
 */
export function streamEventForApiRow(
  row: Json,
  wiki: string,
  host: string,
): Json {
  const ts = String(row.timestamp);
  return {
    $schema: "/mediawiki/recentchange/1.0.0",
    meta: {
      id: crypto.randomUUID(),
      dt: ts,
      domain: host,
      stream: "mediawiki.recentchange",
    },
    id: row.rcid,
    type: row.type,
    namespace: row.ns,
    title: row.title,
    comment: row.comment,
    timestamp: Date.parse(ts) / 1000,
    user: row.user,
    bot: row.bot,
    minor: row.minor,
    length: { old: row.oldlen, new: row.newlen },
    revision: { old: row.old_revid, new: row.revid },
    server_url: `https://${host}`,
    server_name: host,
    server_script_path: "/w",
    wiki,
  };
}

/** An EventStreams event as the producer publishes it. */
export function streamRecord(event: Json): ReplayedRecord {
  const env: Envelope = {
    v: 1,
    source: "eventstreams",
    wiki: String(event.wiki),
    server_name: String(event.server_name),
    fetched_at: "2024-04-26T00:01:00Z",
    row: event,
  };
  return {
    wiki: env.wiki,
    rcid: String(event.id),
    key: `${env.wiki}:${event.title}`,
    value: JSON.stringify(env),
  };
}

/** An Action API row as the producer publishes it. */
export function apiRecord(
  row: Json,
  wiki: string,
  host: string,
): ReplayedRecord {
  const env: Envelope = {
    v: 1,
    source: "action_api",
    wiki,
    server_name: host,
    fetched_at: "2024-04-26T00:01:00Z",
    row,
  };
  return {
    wiki,
    rcid: String(row.rcid),
    key: `${wiki}:${row.title}`,
    value: JSON.stringify(env),
  };
}

/**
 * CONSTRUCTED Action API suppress/revision row: the recorded enwiki delete/delete row (rcid
 * 616263547) with a new rcid and log id, the target's page, and fv2 `logparams` as
 * DeleteLogFormatter::getParametersForApi gives them (`{type, ids, old, new}` with bitmasks).
 */
export function apiSuppression(
  target: Json,
  options: {
    revId: number;
    bitmask: number;
    rcid: number;
    logId: number;
    at: string;
  },
): Json {
  const field = (bitmask: number) => ({
    bitmask,
    content: (bitmask & 1) !== 0,
    comment: (bitmask & 2) !== 0,
    user: (bitmask & 4) !== 0,
    restricted: (bitmask & 8) !== 0,
  });
  return {
    ...apiRow("enwiki", 616263547),
    rcid: options.rcid,
    logid: options.logId,
    ns: target.ns,
    title: target.title,
    timestamp: options.at,
    logtype: "suppress",
    logaction: "revision",
    logparams: {
      type: "revision",
      ids: [options.revId],
      old: field(0),
      new: field(options.bitmask),
    },
  };
}

/**
 * CONSTRUCTED edit of page `title`: recorded stream edit 1769695959 with a new meta.id and rcid,
 * moved onto the page and `dt` seconds away from `at`.
 */
export function streamEditOn(
  page: Json,
  options: { rcid: number; at: number },
): Json {
  const base = streamEvent(1769695959);
  return {
    ...base,
    meta: { ...(base.meta as Json), id: crypto.randomUUID() },
    id: options.rcid,
    title: page.title,
    namespace: page.namespace,
    timestamp: options.at,
  };
}

/**
 * CONSTRUCTED delete/event hiding `nfield` of log entry `target` (1 action, 2 comment, 4 user): the
 * recorded delete/delete event with a new meta.id, rcid and log id, and the delete/event params
 * (`4::ids`, `5::ofield`, `6::nfield`: no type).
 */
export function logEntryDeletion(
  target: Json,
  options: { nfield: number; rcid: number; logId: number; at: number },
): Json {
  const base = streamEvent(1769695961);
  return {
    ...base,
    meta: { ...(base.meta as Json), id: crypto.randomUUID() },
    id: options.rcid,
    namespace: -1,
    title: "Special:Log/delete",
    timestamp: options.at,
    log_id: options.logId,
    log_action: "event",
    log_params: {
      ids: [String(target.log_id)],
      ofield: "0",
      nfield: String(options.nfield),
    },
    comment: "CONSTRUCTED test input: log entry deletion",
    parsedcomment: "CONSTRUCTED test input: log entry deletion",
    log_action_comment: "changed visibility of a log entry",
  };
}
