/** @module bench:history's queries: each dashboard query and the research queries, p50/p95. */
import type { Sql } from "../lib/sink/db.ts";
import { createDashboardData } from "../lib/http/dashboard_data.ts";

/** Milliseconds at the 50th and 95th percentile of one query. */
export interface QueryTimes {
  p50_ms: number;
  p95_ms: number;
}

/**
 * p50/p95 of each dashboard query and the research queries. The dashboard is read in live mode
 * (the clock just after the newest row), with the default window (1 h, names `dashboard.*`) and
 * the 24 h one (`dashboard_24h.*`); the table was just vacuumed (all pages all-visible).
 */
export async function measureQueries(
  sql: Sql,
  samples: number,
  say: (line: string) => void,
): Promise<Record<string, QueryTimes>> {
  const times = new Map<string, number[]>();
  const add = (name: string, ms: number) =>
    times.set(name, [...(times.get(name) ?? []), ms]);
  const [n] = await sql<{ t: Date }[]>`
    select max(event_time) as t from wiki_recent_changes`;
  const newest = n!.t;
  const reader = (prefix: string) =>
    createDashboardData(sql, {
      now: () => new Date(newest.getTime() + 60_000),
      statementTimeoutMs: 60_000,
      observe: (q, ms) => add(`${prefix}.${q}`, ms),
    });
  const dashboard = reader("dashboard");
  const dashboard24h = reader("dashboard_24h");
  const [page] = await sql<{ wiki: string; page_id: string }[]>`
    select wiki, page_id::text from wiki_recent_changes
    where event_time > ${newest} - interval '1 hour' and page_id > 0
    group by 1, 2 order by count(*) desc limit 1`;
  const research: [string, () => Promise<unknown>][] = [
    [
      "one_wiki_last_day.lvwiki",
      () =>
        sql`select rcid, event_time, title, user_name, change_type from wiki_recent_changes
        where wiki = 'lvwiki' and event_time > ${newest} - interval '1 day'
        order by event_time`,
    ],
    [
      "one_wiki_last_day.wikidatawiki_newest_1000",
      () =>
        sql`select rcid, event_time, title, user_name, change_type from wiki_recent_changes
        where wiki = 'wikidatawiki' and event_time > ${newest} - interval '1 day'
        order by event_time desc limit 1000`,
    ],
    [
      "one_page_history",
      () =>
        sql`select rev_id, event_time, user_name, old_len, new_len, comment
        from wiki_recent_changes where wiki = ${page!.wiki} and page_id = ${
          page!.page_id
        }
        order by event_time`,
    ],
    [
      "month_daily_activity.one_wiki",
      () =>
        sql`select day, sum(changes) as changes, sum(edits) as edits, sum(bot_changes) as bots
        from wiki_activity_day where wiki = 'wikidatawiki'
          and day > ${newest} - interval '30 days' group by day order by day`,
    ],
    [
      "month_daily_activity.all_wikis",
      () =>
        sql`select day, wiki, sum(changes) as changes from wiki_activity_day
        where day > ${newest} - interval '30 days' group by 1, 2 order by 1, 2`,
    ],
    [
      "year_hourly_activity.one_wiki",
      () =>
        sql`select hour, sum(changes) as changes from wiki_activity_hour
        where wiki = 'wikidatawiki' and hour > ${newest} - interval '365 days'
        group by hour order by hour`,
    ],
  ];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await dashboard.snapshot({ window: "1h" });
    add("dashboard.snapshot", performance.now() - t0);
    const t24 = performance.now();
    await dashboard24h.snapshot({ window: "24h" });
    add("dashboard_24h.snapshot", performance.now() - t24);
    for (const [name, q] of research) {
      const t1 = performance.now();
      await q();
      add(name, performance.now() - t1);
    }
  }
  const out: Record<string, QueryTimes> = {};
  for (const [name, ms] of times) {
    out[name] = { p50_ms: pct(ms, 0.5), p95_ms: pct(ms, 0.95) };
    say(`${name}: p50 ${out[name].p50_ms} ms, p95 ${out[name].p95_ms} ms`);
  }
  return out;
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return Math.round(v * 10) / 10;
}
