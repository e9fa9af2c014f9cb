/** @module Turns a validated recent-changes row into the typed columns of `wiki_recent_changes`. */
import type { ApiRow, StreamEvent } from "../schemas/wikimedia.ts";

/** One row of `wiki_recent_changes` (ids as decimal strings: they are 64-bit). */
export interface ChangeRow {
  wiki: string;
  server_name: string;
  rcid: string;
  change_type: string;
  namespace: number | null;
  title: string | null;
  page_id: string | null;
  rev_id: string | null;
  old_rev_id: string | null;
  user_name: string | null;
  user_id: string | null;
  is_anon: boolean;
  is_temp: boolean;
  is_bot: boolean;
  is_minor: boolean;
  is_new: boolean;
  old_len: number | null;
  new_len: number | null;
  event_time: string;
  comment: string | null;
  tags: string[];
  sha1: string | null;
  log_id: string | null;
  log_type: string | null;
  log_action: string | null;
  log_params: unknown;
  user_hidden: boolean;
  comment_hidden: boolean;
  action_hidden: boolean;
  sha1_hidden: boolean;
  suppressed: boolean;
  raw: Record<string, unknown>;
}

/** Where a row came from. */
export interface WikiRef {
  wiki: string;
  serverName: string;
}

/** Keys of a row that are columns or flags; other keys of a legacy log row are its parameters. */
export const KNOWN_KEYS: ReadonlySet<string> = new Set([
  "type",
  "ns",
  "title",
  "pageid",
  "revid",
  "old_revid",
  "rcid",
  "user",
  "userid",
  "anon",
  "temp",
  "bot",
  "new",
  "minor",
  "oldlen",
  "newlen",
  "timestamp",
  "comment",
  "parsedcomment",
  "redirect",
  "patrolled",
  "unpatrolled",
  "autopatrolled",
  "tags",
  "sha1",
  "logid",
  "logtype",
  "logaction",
  "logparams",
  "userhidden",
  "commenthidden",
  "actionhidden",
  "sha1hidden",
  "suppressed",
  "oresscores",
]); // deno-fmt-ignore

/**
 * Maps a row (fv1 or fv2) to columns. Zero ids mean "none" in MediaWiki and become NULL; new pages
 * have no old revision or old length; log rows have no sizes; hidden fields become NULL.
 */
export function normaliseApiRow(row: ApiRow, ref: WikiRef, raw: Record<string, unknown>): ChangeRow {
  const isNew = row.type === "new" || row.new === true;
  const isLog = row.type === "log";
  const userHidden = row.userhidden === true;
  return {
    wiki: ref.wiki,
    server_name: ref.serverName,
    rcid: row.rcid,
    change_type: row.type,
    namespace: row.ns ?? null,
    title: row.title ?? null,
    page_id: nonZero(row.pageid),
    rev_id: nonZero(row.revid),
    old_rev_id: isNew ? null : nonZero(row.old_revid),
    user_name: userHidden ? null : row.user ?? null,
    user_id: userHidden ? null : nonZero(row.userid),
    is_anon: row.anon === true,
    is_temp: row.temp === true,
    is_bot: row.bot === true,
    is_minor: row.minor === true,
    is_new: isNew,
    old_len: isNew || isLog ? null : row.oldlen ?? null,
    new_len: isLog ? null : row.newlen ?? null,
    event_time: new Date(row.timestamp).toISOString(),
    comment: row.commenthidden === true ? null : row.comment ?? null,
    tags: row.tags ?? [],
    sha1: row.sha1hidden === true ? null : row.sha1 ?? null,
    log_id: isLog ? nonZero(row.logid) : null,
    log_type: isLog ? row.logtype ?? null : null,
    log_action: isLog ? row.logaction ?? null : null,
    log_params: isLog ? logParams(row, raw) : null,
    user_hidden: userHidden,
    comment_hidden: row.commenthidden === true,
    action_hidden: row.actionhidden === true,
    sha1_hidden: row.sha1hidden === true,
    suppressed: row.suppressed === true,
    raw,
  };
}

/**
 * Maps an EventStreams event to columns. Events with an rcid share the key `(wiki, rcid)` with API
 * rows; log events that never reach the RC table (`id: null`: patrol, abusefilter, tag updates)
 * get a stable negative rcid derived from `meta.id`, so replays still dedupe. The stream has no
 * page id, user id, tags or sha1: those stay NULL.
 */
export function normaliseStreamEvent(
  e: StreamEvent,
  raw: Record<string, unknown>,
): ChangeRow {
  const isNew = e.type === "new";
  const isLog = e.type === "log";
  const user = e.user ?? null;
  return {
    wiki: e.wiki,
    server_name: e.server_name,
    rcid: nonZero(e.id) ?? syntheticRcid(e.meta.id),
    change_type: e.type,
    namespace: e.namespace ?? null,
    title: e.title ?? null,
    page_id: null,
    rev_id: nonZero(e.revision?.new ?? undefined),
    old_rev_id: isNew ? null : nonZero(e.revision?.old ?? undefined),
    user_name: user,
    user_id: null,
    is_anon: user !== null && isIpAddress(user),
    is_temp: user !== null && user.startsWith("~"),
    is_bot: e.bot === true,
    is_minor: e.minor === true,
    is_new: isNew,
    old_len: isNew || isLog ? null : e.length?.old ?? null,
    new_len: isLog ? null : e.length?.new ?? null,
    event_time: new Date(e.timestamp * 1000).toISOString(),
    comment: e.comment ?? null,
    tags: [],
    sha1: null,
    log_id: isLog ? nonZero(e.log_id ?? undefined) : null,
    log_type: isLog ? e.log_type ?? null : null,
    log_action: isLog ? e.log_action ?? null : null,
    log_params: isLog ? e.log_params ?? null : null,
    user_hidden: false,
    comment_hidden: false,
    action_hidden: false,
    sha1_hidden: false,
    suppressed: false,
    raw,
  };
}

/** A negative bigint (as text) from the first 60 bits of a UUID: never collides with a real rcid. */
export function syntheticRcid(metaId: string): string {
  const hex = metaId.replace(/[^0-9a-f]/gi, "").slice(0, 15).padEnd(15, "0");
  return (-(BigInt(`0x${hex}`) + 1n)).toString();
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) ||
    (/^[0-9a-f:]+$/i.test(name) && name.includes(":"));
}

/** The Kafka message key: wiki and page, so one page's changes stay in one partition, in order. */
export function messageKey(
  wiki: string,
  row: { pageid?: string; title?: string; rcid: string },
): string {
  if (row.pageid && row.pageid !== "0") return `${wiki}:${row.pageid}`;
  if (row.title) return `${wiki}:${row.title}`;
  return `${wiki}:rc${row.rcid}`;
}

function nonZero(id: string | number | null | undefined): string | null {
  if (id === undefined || id === null) return null;
  const text = typeof id === "number"
    ? String(id)
    : id.replace(/^0+(?=\d)/, "");
  return text === "0" ? null : text;
}

/** fv2 `logparams` as is; legacy fv1 rows carry their parameters as extra keys instead. */
function logParams(row: ApiRow, raw: Record<string, unknown>): unknown {
  if (row.logparams !== undefined) return row.logparams;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!KNOWN_KEYS.has(k)) extra[k] = v;
  }
  return Object.keys(extra).length > 0 ? extra : null;
}
