/** @module The direct write: COPY straight into wiki_recent_changes, rollups counted by the client. */
import { ADD_COUNTS, changeKey } from "./_merge_sql.ts";
import type { SinkRow } from "./sink.ts";

/** The activity counters, in rollup column order. */
const COUNTERS = [
  "changes",
  "edits",
  "new_pages",
  "log_events",
  "categorize",
  "bot_changes",
  "anon_changes",
  "bytes_added",
  "bytes_removed",
] as const;

const SUMS = COUNTERS.map((c) => `sum(${c})::bigint`).join(", ");

/** Adds the groups ($1) to one rollup table (per wiki, namespace and UTC hour or day). */
function rollup(table: string, bucket: "hour" | "day"): string {
  return `insert into ${table} as a
  select wiki, date_trunc('${bucket}', minute, 'UTC'), namespace, ${SUMS}
  from g group by 1, 2, 3 order by 1, 2, 3
  on conflict (wiki, ${bucket}, namespace) do update set ${ADD_COUNTS}`;
}

/**
 * Adds the activity groups ($1: a JSON array of groups per wiki, UTC minute and namespace,
 * see {@linkcode activityJson}) to the per-minute activity and the hourly and daily rollups: what
 * MERGE_SQL adds for its inserted rows, counted by the client from rows that were all inserted.
 */
export const ROLLUP_SQL = `
with g as materialized (
  select * from json_to_recordset($1::text::json) as g(wiki text, minute timestamptz,
    namespace integer, ${COUNTERS.map((c) => `${c} bigint`).join(", ")})
), up as (
  insert into wiki_activity_minute as a
  select wiki, minute, ${SUMS} from g group by 1, 2 order by 1, 2
  on conflict (wiki, minute) do update set ${ADD_COUNTS}
), up_hour as (
  ${rollup("wiki_activity_hour", "hour")}
), up_day as (
  ${rollup("wiki_activity_day", "day")}
)
select count(*)::int as groups from g`;

/**
 * An event time as the client can bucket it: UTC, ISO 8601, whole seconds or at most microseconds
 * (timestamptz keeps microseconds and rounds finer digits, possibly into the next minute).
 */
const UTC_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z$/;

/**
 * Whether rows can be COPYed straight into the table, and if so their earliest event time
 * (ISO 8601, for the retention check); null when not. They can when no change is twice in the
 * batch (the merge numbers copies) and every event time is one the client buckets into the
 * minute PostgreSQL would (a valid UTC time, not a leap second that PostgreSQL rolls over).
 * Whether a row is already in the table is the database's to say.
 */
export function directEarliest(rows: readonly SinkRow[]): string | null {
  const seen = new Set<string>();
  let min = Infinity;
  for (const r of rows) {
    const t = r.event_time;
    if (!UTC_TIME.test(t)) return null;
    const ms = Date.parse(t);
    if (
      !(ms >= -62135596800000) || // 0001-01-01: years PostgreSQL and Date agree on
      new Date(ms).toISOString().slice(0, 16) !== t.slice(0, 16)
    ) return null;
    if (ms < min) min = ms;
    const key = changeKey(r);
    if (seen.has(key)) return null;
    seen.add(key);
  }
  return rows.length > 0 ? new Date(min).toISOString() : null;
}

/**
 * The rows' activity per wiki, UTC minute and namespace, counted as MERGE_SQL's COUNTS does, as
 * the JSON parameter of {@linkcode ROLLUP_SQL}.
 */
export function activityJson(rows: readonly SinkRow[]): string {
  const groups = new Map<string, Record<string, string | number>>();
  for (const r of rows) {
    const minute = `${r.event_time.slice(0, 16)}:00Z`;
    const namespace = r.namespace ?? -1;
    const key = `${r.wiki}\t${minute}\t${namespace}`;
    let g = groups.get(key);
    if (!g) {
      g = { wiki: r.wiki, minute, namespace };
      for (const c of COUNTERS) g[c] = 0;
      groups.set(key, g);
    }
    const add = (c: (typeof COUNTERS)[number], n = 1) => {
      g[c] = (g[c] as number) + n;
    };
    add("changes");
    if (r.change_type === "edit") add("edits");
    else if (r.change_type === "new") add("new_pages");
    else if (r.change_type === "log") add("log_events");
    else if (r.change_type === "categorize") add("categorize");
    if (r.is_bot === true) add("bot_changes");
    if (r.is_anon === true) add("anon_changes");
    if (r.change_type === "edit" || r.change_type === "new") {
      const delta = (r.new_len ?? 0) - (r.old_len ?? 0);
      if (delta > 0) add("bytes_added", delta);
      if (delta < 0) add("bytes_removed", -delta);
    }
  }
  return JSON.stringify([...groups.values()]);
}
