/** @module Revision deletion, suppression and page deletion: read from log rows, applied in the write. */
import { pipelined, type Transaction } from "./db.ts";
import type { ChangeRow } from "../source/normalise.ts";
import {
  APPLY_PAGE_DELETIONS_SQL,
  APPLY_VISIBILITY_SQL,
  KNOWN_REDACTIONS_SQL,
  RECORD_PAGE_EVENTS_SQL,
  RECORD_VISIBILITY_SQL,
} from "./_redaction_sql.ts";
import { REDACTION_LOCK } from "./_locks.ts";

/** A visibility change (delete/revision, delete/event, suppress/revision, suppress/event). */
export interface VisibilityChange {
  wiki: string;
  /** `revision`: ids are revision ids; `logging`: ids are log ids. */
  target: "revision" | "logging";
  target_id: string;
  /** The new bitfield: 1 text (revision) or action (log entry), 2 comment, 4 user, 8 suppressed. */
  hidden: number;
  log_id: string;
  redacted_at: string;
}

/** A page deletion or restore (delete/delete, delete/delete_redir, suppress/delete, delete/restore). */
export interface PageEvent {
  wiki: string;
  title: string;
  action: "delete" | "restore";
  log_id: string;
  event_time: string;
}

/** What the log rows of a batch ask for. */
export interface Redactions {
  visibility: VisibilityChange[];
  pages: PageEvent[];
}

/** Options for {@linkcode applyRedactions}. */
export interface RedactionOptions {
  /** Also remove the comment, user and sha1 of a deleted page's rows (REDACT_DELETED_PAGES). */
  redactDeletedPages: boolean;
}

const PAGE_ACTIONS: Record<string, "delete" | "restore"> = {
  "delete/delete": "delete",
  "delete/delete_redir": "delete",
  "delete/delete_redir2": "delete",
  "suppress/delete": "delete",
  "delete/restore": "restore",
};

/** The visibility changes and page events the log rows carry; rows it cannot read give none. */
export function redactionsOf(rows: readonly ChangeRow[]): Redactions {
  const visibility: VisibilityChange[] = [];
  const pages: PageEvent[] = [];
  for (const row of rows) {
    if (row.change_type !== "log" || !row.log_type) continue;
    const kind = `${row.log_type}/${row.log_action}`;
    const action = PAGE_ACTIONS[kind];
    if (action && row.title !== null) {
      pages.push({
        wiki: row.wiki,
        title: row.title,
        action,
        log_id: row.log_id ?? "0",
        event_time: row.event_time,
      });
    } else if (
      (row.log_type === "delete" || row.log_type === "suppress") &&
      (row.log_action === "revision" || row.log_action === "event")
    ) {
      visibility.push(...visibilityChanges(row, row.log_action));
    }
  }
  return { visibility, pages };
}

/**
 * Records the batch's redactions and applies every known one to the rows they concern and to the
 * batch's own rows (a redaction that arrived first), inside the write's transaction. `before`
 * are statements of the write sent but not awaited (e.g. the rollups): they go in the same round
 * trip as the first of these, ahead of them, and an error of theirs is the one thrown.
 */
export async function applyRedactions(
  tx: Transaction,
  rows: readonly ChangeRow[],
  options: RedactionOptions,
  before: PromiseLike<unknown>[] = [],
): Promise<void> {
  const { visibility, pages } = redactionsOf(rows);
  const v = JSON.stringify(visibility);
  const p = JSON.stringify(pages);
  const k = batchKeys(rows);
  // Prepared: planning an update of the partitioned table costs more than running it.
  const run = (sql: string, params: unknown[] = []) =>
    tx.unsafe(sql, params as never[], { prepare: true });
  // Sent together, run in this order, each a statement of its own (pipelined: one round trip, not
  // one a statement, so the write does not wait on this process between them).
  // The lock is exclusive until commit, and a statement of its own (the next ones' snapshots see
  // every write that held it before): of two writes in flight, one recording a redaction and one
  // holding a row it concerns, the later one to get here sees the other committed, and applies
  // it. Keyed by the table, whatever the session's search_path (see lib/sink/_locks.ts).
  const sent = [
    ...before,
    tx.unsafe(`select pg_advisory_xact_lock(${REDACTION_LOCK})`),
    ...(visibility.length > 0 ? [run(RECORD_VISIBILITY_SQL, [v])] : []),
    ...(pages.length > 0 ? [run(RECORD_PAGE_EVENTS_SQL, [p])] : []),
    run(KNOWN_REDACTIONS_SQL, [k]),
  ];
  const [known] = (await pipelined(sent)).at(-1) as {
    visibility?: boolean;
    pages?: boolean;
  }[];
  const apply = [
    ...(visibility.length > 0 || known?.visibility
      ? [run(APPLY_VISIBILITY_SQL, [v, k])]
      : []),
    ...(pages.length > 0 || known?.pages
      ? [run(APPLY_PAGE_DELETIONS_SQL, [p, options.redactDeletedPages, k])]
      : []),
  ];
  await pipelined(apply);
}

/**
 * What the redaction statements look up of the batch's own rows, as a JSON array: a row's
 * revision id, a log row's log id and a non-log row's title (rows with none are left out).
 */
export function batchKeys(rows: readonly ChangeRow[]): string {
  const out: {
    wiki: string;
    rev_id: string | null;
    log_id: string | null;
    title: string | null;
  }[] = [];
  for (const r of rows) {
    const log = r.change_type === "log";
    const rev_id = r.rev_id ?? null;
    const log_id = log ? r.log_id ?? null : null;
    const title = log ? null : r.title ?? null;
    if (rev_id !== null || log_id !== null || title !== null) {
      out.push({ wiki: r.wiki, rev_id, log_id, title });
    }
  }
  return JSON.stringify(out);
}

/** The parameters in one shape: `{ type, ids, nfield }` (stream, fv2 API or positional legacy). */
function visibilityChanges(
  row: ChangeRow,
  action: "revision" | "event",
): VisibilityChange[] {
  const p = readParams(row.log_params, action);
  if (!p) return [];
  const target = p.type === "revision"
    ? "revision"
    : p.type === "logging"
    ? "logging"
    : null;
  if (target === null || p.hidden === null || p.hidden === 0) return [];
  return p.ids.map((id) => ({
    wiki: row.wiki,
    target,
    target_id: id,
    hidden: p.hidden!,
    log_id: row.log_id ?? "0",
    redacted_at: row.event_time,
  }));
}

interface Params {
  type: string | undefined;
  ids: string[];
  hidden: number | null;
}

/**
 * EventStreams: `{type, ids, ofield, nfield}` (rc_params without the `N::` prefixes; delete/event
 * has no `type`). Action API fv2: `{type, ids, old: {bitmask}, new: {bitmask}}`. Legacy rows:
 * positional `["revision", "1,3", "ofield=1", "nfield=2"]` (delete/event: without the type).
 */
function readParams(params: unknown, action: string): Params | null {
  if (params === null || typeof params !== "object") return null;
  const o = params as Record<string, unknown>;
  const positional = Array.isArray(params) || "0" in o;
  if (positional) {
    const list = Array.isArray(params) ? params : Object.keys(o)
      .filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b))
      .map((k) => o[k]);
    const rest = action === "event" ? ["logging", ...list] : list;
    return {
      type: typeof rest[0] === "string" ? rest[0] : undefined,
      ids: ids(rest[1]),
      hidden: bits(rest[3]),
    };
  }
  const next = o.new as Record<string, unknown> | undefined;
  return {
    type: typeof o.type === "string"
      ? o.type
      : action === "event"
      ? "logging"
      : undefined,
    ids: ids(o.ids),
    hidden: bits(o.nfield ?? next?.bitmask),
  };
}

function ids(v: unknown): string[] {
  const list = Array.isArray(v)
    ? v
    : typeof v === "string"
    ? v.split(",")
    : typeof v === "number"
    ? [v]
    : [];
  return list.map((x) => String(x).trim()).filter((x) =>
    /^\d{1,18}$/.test(x) && x !== "0"
  );
}

function bits(v: unknown): number | null {
  const text = typeof v === "number"
    ? String(v)
    : typeof v === "string"
    ? v.replace(/^nfield=/, "")
    : "";
  if (!/^\d{1,2}$/.test(text)) return null;
  const n = Number(text);
  return n <= 15 ? n : null;
}
