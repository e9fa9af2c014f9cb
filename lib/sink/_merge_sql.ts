/** @module The SQL of a write: the text staging table and the merge into the typed tables. */
import { COLUMNS } from "./copy.ts";
import type { SinkRow } from "./sink.ts";

/**
 * Column types. Rows are COPYed into an all-text staging table and cast by the merge: postgres.js
 * 3.4 never settles a COPY that the server rejects (the error arrives after the stream was
 * handed out), so a bad value must fail in an ordinary statement, where the bisect can find it.
 */
const TYPES: Record<(typeof COLUMNS)[number], string> = {
  wiki: "text",
  rcid: "bigint",
  server_name: "text",
  change_type: "text",
  namespace: "integer",
  title: "text",
  page_id: "bigint",
  rev_id: "bigint",
  old_rev_id: "bigint",
  user_name: "text",
  user_id: "bigint",
  is_anon: "boolean",
  is_temp: "boolean",
  is_bot: "boolean",
  is_minor: "boolean",
  is_new: "boolean",
  old_len: "integer",
  new_len: "integer",
  event_time: "timestamptz",
  comment: "text",
  tags: "text[]",
  sha1: "text",
  log_id: "bigint",
  log_type: "text",
  log_action: "text",
  log_params: "jsonb",
  user_hidden: "boolean",
  comment_hidden: "boolean",
  action_hidden: "boolean",
  sha1_hidden: "boolean",
  suppressed: "boolean",
  raw: "jsonb",
  kafka_partition: "integer",
  kafka_offset: "bigint",
}; // deno-fmt-ignore

/** The all-text staging table's columns. */
export const STAGE_DDL = [...COLUMNS.map((c) => `${c} text`), "copy_no int"].join(", ");

/** The activity counters of a group of newly inserted rows (`ins`), in rollup column order. */
const COUNTS = `count(*),
    count(*) filter (where change_type = 'edit'),
    count(*) filter (where change_type = 'new'),
    count(*) filter (where change_type = 'log'),
    count(*) filter (where change_type = 'categorize'),
    count(*) filter (where is_bot),
    count(*) filter (where is_anon),
    coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0),
    coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0)`;

/** The rollup upserts' update: the counters of the row being added (`excluded`) added to `a`. */
export const ADD_COUNTS = `changes = a.changes + excluded.changes,
    edits = a.edits + excluded.edits,
    new_pages = a.new_pages + excluded.new_pages,
    log_events = a.log_events + excluded.log_events,
    categorize = a.categorize + excluded.categorize,
    bot_changes = a.bot_changes + excluded.bot_changes,
    anon_changes = a.anon_changes + excluded.anon_changes,
    bytes_added = a.bytes_added + excluded.bytes_added,
    bytes_removed = a.bytes_removed + excluded.bytes_removed`;

/** Adds the inserted rows to one rollup table (per wiki, namespace and UTC hour or day). */
function rollup(table: string, bucket: "hour" | "day"): string {
  return `insert into ${table} as a
  select wiki, date_trunc('${bucket}', event_time, 'UTC'), coalesce(namespace, -1), ${COUNTS}
  from ins group by 1, 2, 3 order by 1, 2, 3
  on conflict (wiki, ${bucket}, namespace) do update set ${ADD_COUNTS}`;
}

/** Hidden flags: an existing row's or the incoming one's (a flag is never cleared). */
const FLAGS = [
  "user_hidden",
  "comment_hidden",
  "action_hidden",
  "sha1_hidden",
  "suppressed",
] as const;
const flag = (f: (typeof FLAGS)[number]) => `(t.${f} or excluded.${f})`;

/**
 * What a second source row for a known (wiki, rcid) may change: it fills in what the first one
 * lacked (EventStreams rows have no page id, user id, tags or sha1), never overwrites a known value
 * with NULL and never fills in a hidden field. The columns the per-minute activity counts
 * (type, time, namespace, sizes, bot and anon flags), `raw` and the Kafka position stay as first written.
 */
const FILL: Record<string, string> = {
  title: `case when ${
    flag("action_hidden")
  } then null else coalesce(t.title, excluded.title) end`,
  page_id: "coalesce(t.page_id, excluded.page_id)",
  rev_id: "coalesce(t.rev_id, excluded.rev_id)",
  old_rev_id: "coalesce(t.old_rev_id, excluded.old_rev_id)",
  user_name: `case when ${
    flag("user_hidden")
  } then null else coalesce(t.user_name, excluded.user_name) end`,
  user_id: `case when ${
    flag("user_hidden")
  } then null else coalesce(t.user_id, excluded.user_id) end`,
  comment: `case when ${
    flag("comment_hidden")
  } then null else coalesce(t.comment, excluded.comment) end`,
  tags: "case when t.tags = '{}' then excluded.tags else t.tags end",
  sha1: `case when ${
    flag("sha1_hidden")
  } then null else coalesce(t.sha1, excluded.sha1) end`,
  log_id: "coalesce(t.log_id, excluded.log_id)",
  log_type: "coalesce(t.log_type, excluded.log_type)",
  log_action: "coalesce(t.log_action, excluded.log_action)",
  log_params: `case when ${
    flag("action_hidden")
  } then null else coalesce(t.log_params, excluded.log_params) end`,
  ...Object.fromEntries(FLAGS.map((f) => [f, flag(f)])),
  raw: `wikistream_redact_raw(t.raw, ${flag("user_hidden")}, ${
    flag("comment_hidden")
  }, ${flag("sha1_hidden")}, ${flag("action_hidden")})`,
}; // deno-fmt-ignore
const FILL_SET = Object.entries(FILL).map(([c, e]) => `${c} = ${e}`).join(",\n  ");
const FILL_WHERE = `(${Object.values(FILL).join(", ")}) is distinct from (${
  Object.keys(FILL).map((c) => `t.${c}`).join(", ")
})`;

/**
 * The $1-th copy of each staged (wiki, rcid) in Kafka order (numbered by the client, see
 * {@linkcode copyNumbers}), cast; none below the retention horizon.
 */
const STAGED_COPY = `select ${
  COLUMNS.map((c) => `${c}::${TYPES[c]} as ${c}`).join(", ")
} from pg_temp.wikistream_stage_text
  where copy_no = $1::int
    and event_time::timestamptz >= (select retained_from from wiki_history_state)`;

/**
 * Merges the $1-th copy of each staged change, in one statement: inserts it where it is new, fills
 * in a row that was there already from it (a richer source's row), and adds only the inserted rows
 * to the per-minute activity and the hourly and daily rollups. The staged copy is cast once
 * (`s`). The fill-in cannot touch a row the insert wrote: every part of one statement sees the
 * same snapshot, taken before the insert, and the rows the insert wrote are left out of the join
 * beforehand so only the changes that met a conflict are looked up. A batch holding one change
 * from both sources is merged copy by copy. Rows below the retention horizon (their partition was
 * dropped) are refused, so a late redelivery never counts a row twice. An rcid's timestamp never
 * changes, so the partition key (wiki, rcid, event_time) dedupes as (wiki, rcid) did.
 */
export const MERGE_SQL = `
with s as materialized (${STAGED_COPY}), ins as (
  insert into wiki_recent_changes (${COLUMNS.join(", ")})
  select * from s
  order by wiki, rcid
  on conflict (wiki, rcid, event_time) do nothing
  returning wiki, rcid, namespace, event_time, change_type, is_bot, is_anon, old_len, new_len,
    kafka_partition
), fill as (
  update wiki_recent_changes as t set
  ${FILL_SET.replaceAll("excluded.", "s.")}
  from s
  where not exists (select from ins where ins.wiki = s.wiki and ins.rcid = s.rcid)
    and t.wiki = s.wiki and t.rcid = s.rcid and t.event_time = s.event_time
    and ${FILL_WHERE.replaceAll("excluded.", "s.")}
), up as (
  insert into wiki_activity_minute as a
  select wiki, date_trunc('minute', event_time, 'UTC'), ${COUNTS}
  from ins group by 1, 2 order by 1, 2
  on conflict (wiki, minute) do update set ${ADD_COUNTS}
), up_hour as (
  ${rollup("wiki_activity_hour", "hour")}
), up_day as (
  ${rollup("wiki_activity_day", "day")}
)
select kafka_partition, count(*)::int as inserted from ins group by 1`;

/**
 * Each row's copy number: 1 for the first row of its (wiki, rcid) in the batch, 2 for the second
 * (the same change from the other source, or a redelivery), and so on, in the batch's order.
 */
export function copyNumbers(rows: readonly SinkRow[]): number[] {
  const seen = new Map<string, number>();
  return rows.map((r) => {
    const key = changeKey(r);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n;
  });
}

/** A change's identity as the SQL compares it: wiki and rcid as a number ("0123" is "123"). */
export function changeKey(r: Pick<SinkRow, "wiki" | "rcid">): string {
  const rcid = r.rcid.length > 1 && r.rcid[0] === "0"
    ? String(BigInt(r.rcid))
    : r.rcid;
  return `${r.wiki}\t${rcid}`;
}
