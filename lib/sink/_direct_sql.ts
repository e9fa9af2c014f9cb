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
    if (!UTC_TIME.test(t) || !inRange(t)) return null;
    const ms = Date.parse(t);
    if (!(ms >= -62135596800000)) return null; // 0001-01-01: years PostgreSQL and Date agree on
    if (ms < min) min = ms;
    const key = changeKey(r);
    if (seen.has(key)) return null;
    seen.add(key);
  }
  return rows.length > 0 ? new Date(min).toISOString() : null;
}

/**
 * Whether the fields of a time shaped as UTC_TIME are all in range (month, day of that month,
 * hour, minute, second): then Date and PostgreSQL read it as written, in the same minute, while
 * an out-of-range field (a leap second, 24:00, February 30) rolls over into another one.
 */
function inRange(t: string): boolean {
  const n = (at: number, len: number) => {
    let v = 0;
    for (let i = at; i < at + len; i++) v = v * 10 + t.charCodeAt(i) - 48;
    return v;
  };
  const year = n(0, 4), month = n(5, 2), day = n(8, 2);
  return month >= 1 && month <= 12 && day >= 1 &&
    day <= daysIn(year, month) && n(11, 2) <= 23 && n(14, 2) <= 59 &&
    n(17, 2) <= 59;
}

function daysIn(year: number, month: number): number {
  if (month !== 2) {
    return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  }
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
}

/** One activity group: its key columns, then the counters. */
type Group =
  & { wiki: string; minute: string; namespace: number }
  & Record<
    (typeof COUNTERS)[number],
    number
  >;

/**
 * The rows' activity per wiki, UTC minute and namespace, counted as MERGE_SQL's COUNTS does, as
 * the JSON parameter of {@linkcode ROLLUP_SQL}.
 */
export function activityJson(rows: readonly SinkRow[]): string {
  const groups = new Map<string, Group>();
  for (const r of rows) {
    const namespace = r.namespace ?? -1;
    const key = `${r.wiki}\t${r.event_time.slice(0, 16)}\t${namespace}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        wiki: r.wiki,
        minute: `${r.event_time.slice(0, 16)}:00Z`,
        namespace,
        changes: 0,
        edits: 0,
        new_pages: 0,
        log_events: 0,
        categorize: 0,
        bot_changes: 0,
        anon_changes: 0,
        bytes_added: 0,
        bytes_removed: 0,
      };
      groups.set(key, g);
    }
    g.changes++;
    const type = r.change_type;
    if (type === "edit") g.edits++;
    else if (type === "new") g.new_pages++;
    else if (type === "log") g.log_events++;
    else if (type === "categorize") g.categorize++;
    if (r.is_bot === true) g.bot_changes++;
    if (r.is_anon === true) g.anon_changes++;
    if (type === "edit" || type === "new") {
      const delta = (r.new_len ?? 0) - (r.old_len ?? 0);
      if (delta > 0) g.bytes_added += delta;
      if (delta < 0) g.bytes_removed -= delta;
    }
  }
  return JSON.stringify([...groups.values()]);
}
