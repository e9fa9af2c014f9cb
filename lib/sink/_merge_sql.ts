/** @module The SQL of a write: the text staging table and the merge into the typed tables. */
import { COLUMNS } from "./copy.ts";

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
  raw: "jsonb",
  kafka_partition: "integer",
  kafka_offset: "bigint",
}; // deno-fmt-ignore

/** The all-text staging table's columns. */
export const STAGE_DDL = COLUMNS.map((c) => `${c} text`).join(", ");
const CAST_LIST = COLUMNS.map((c) => `${c}::${TYPES[c]}`).join(", ");

/** Casts the staged rows, inserts the new ones and adds them to the per-minute activity. */
export const MERGE_SQL = `
with ins as (
  insert into wiki_recent_changes (${COLUMNS.join(", ")})
  select distinct on (wiki, rcid::bigint) ${CAST_LIST} from pg_temp.wikistream_stage_text
  order by wiki, rcid::bigint, kafka_offset::bigint
  on conflict (wiki, rcid) do nothing
  returning wiki, event_time, change_type, is_bot, is_anon, old_len, new_len
), agg as (
  select wiki, date_trunc('minute', event_time) as minute,
    count(*) as changes,
    count(*) filter (where change_type = 'edit') as edits,
    count(*) filter (where change_type = 'new') as new_pages,
    count(*) filter (where change_type = 'log') as log_events,
    count(*) filter (where change_type = 'categorize') as categorize,
    count(*) filter (where is_bot) as bot_changes,
    count(*) filter (where is_anon) as anon_changes,
    coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0) as bytes_added,
    coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0) as bytes_removed
  from ins group by 1, 2
), up as (
  insert into wiki_activity_minute as a
  select * from agg order by wiki, minute
  on conflict (wiki, minute) do update set
    changes = a.changes + excluded.changes,
    edits = a.edits + excluded.edits,
    new_pages = a.new_pages + excluded.new_pages,
    log_events = a.log_events + excluded.log_events,
    categorize = a.categorize + excluded.categorize,
    bot_changes = a.bot_changes + excluded.bot_changes,
    anon_changes = a.anon_changes + excluded.anon_changes,
    bytes_added = a.bytes_added + excluded.bytes_added,
    bytes_removed = a.bytes_removed + excluded.bytes_removed
)
select count(*)::int as inserted from ins`;
