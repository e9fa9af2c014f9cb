/** @module The dashboard's data: bounded, indexed queries over the last hour of activity. */
import type { Sql } from "../sink/db.ts";

/** Changes of one wiki in one minute (wikis beyond the busiest few are folded into "(other)"). */
export interface MinutePoint {
  minute: string;
  wiki: string;
  changes: number;
}

/** One of the most-edited pages in the window. */
export interface TopPage {
  wiki: string;
  page_id: string;
  title: string | null;
  edits: number;
  last_edit: string;
}

/** A page created in the window. */
export interface NewPage {
  wiki: string;
  title: string | null;
  user_name: string | null;
  event_time: string;
}

/**
 * What the dashboard shows. `mode` says what the hour is relative to: `live` (now; the newest
 * event is less than an hour old), `replay` (the newest event, for recorded or stalled data) or
 * `empty` (no rows yet; now).
 */
export interface DashboardSnapshot {
  generated_at: string;
  mode: "live" | "replay" | "empty";
  window: { from: string; to: string; minutes: number };
  newest_event_time: string | null;
  wikis: string[];
  per_minute: MinutePoint[];
  totals: {
    changes: number;
    bots: number;
    humans: number;
    anonymous: number;
    new_pages: number;
  };
  top_pages: TopPage[];
  new_pages: NewPage[];
  dead_letters: { count: number; capped: boolean };
}

/** Reads the dashboard's snapshot. */
export interface DashboardData {
  snapshot(): Promise<DashboardSnapshot>;
}

/** Options for {@linkcode createDashboardData}. */
export interface DashboardDataOptions {
  /** Minutes in the window (default 60). */
  windowMinutes?: number;
  /** Wikis drawn separately in the chart; the rest are summed as "(other)" (default 8). */
  maxWikis?: number;
  /** Rows in each table (default 10). */
  limit?: number;
  /** Per-query cap, so a slow dashboard never loads the database (default 5000). */
  statementTimeoutMs?: number;
  now?: () => Date;
}

const DEAD_LETTER_CAP = 100_000;

/** Creates the PostgreSQL-backed dashboard data source. */
export function createDashboardData(
  sql: Sql,
  options: DashboardDataOptions = {},
): DashboardData {
  const minutes = options.windowMinutes ?? 60;
  const maxWikis = options.maxWikis ?? 8;
  const limit = options.limit ?? 10;
  const timeout = options.statementTimeoutMs ?? 5000;
  const now = options.now ?? (() => new Date());
  return {
    snapshot: () =>
      sql.begin("read only", async (tx) => {
        await tx.unsafe(`set local statement_timeout = ${Math.trunc(timeout)}`);
        const at = now();
        // Backward scan of the event_time index: one row.
        const [newest] = await tx<{ t: Date | null }[]>`
          select max(event_time) as t from wiki_recent_changes`;
        const newestMs = newest?.t?.getTime() ?? null;
        const mode = newestMs === null
          ? "empty"
          : newestMs >= at.getTime() - minutes * 60_000
          ? "live"
          : "replay";
        const anchor = mode === "replay" ? new Date(newestMs!) : at;
        const to = new Date(
          Math.floor(anchor.getTime() / 60_000) * 60_000 + 60_000,
        );
        const from = new Date(to.getTime() - minutes * 60_000);

        const perMinute = await tx<MinutePoint[]>`
          with w as (
            select wiki, minute, changes from wiki_activity_minute
            where minute >= ${from} and minute < ${to}
          ), top as (
            select wiki from w group by wiki order by sum(changes) desc, wiki limit ${maxWikis}
          )
          select case when wiki in (select wiki from top) then wiki else '(other)' end as wiki,
            minute, sum(changes)::int as changes
          from w group by 1, 2 order by 2, 1`;
        const [totals] = await tx<DashboardSnapshot["totals"][]>`
          select coalesce(sum(changes), 0)::int as changes,
            coalesce(sum(bot_changes), 0)::int as bots,
            coalesce(sum(anon_changes), 0)::int as anonymous,
            greatest(coalesce(sum(changes - bot_changes - anon_changes), 0), 0)::int as humans,
            coalesce(sum(new_pages), 0)::int as new_pages
          from wiki_activity_minute where minute >= ${from} and minute < ${to}`;
        // Index-only scan of the window (0002), then one title lookup per top page.
        const topPages = await tx<TopPage[]>`
          with top as (
            select wiki, page_id, count(*)::int as edits, max(event_time) as last_edit
            from wiki_recent_changes
            where change_type in ('edit', 'new') and event_time >= ${from} and event_time < ${to}
              and page_id > 0
            group by wiki, page_id order by edits desc, last_edit desc limit ${limit}
          )
          select top.wiki, top.page_id::text, t.title, top.edits, top.last_edit
          from top left join lateral (
            select title from wiki_recent_changes r
            where r.wiki = top.wiki and r.page_id = top.page_id and r.event_time <= top.last_edit
            order by r.event_time desc limit 1
          ) t on true
          order by top.edits desc, top.last_edit desc`;
        const newPages = await tx<NewPage[]>`
          select wiki, title, user_name, event_time from wiki_recent_changes
          where change_type = 'new' and event_time >= ${from} and event_time < ${to}
          order by event_time desc limit ${limit}`;
        const [dl] = await tx<{ n: number }[]>`
          select count(*)::int as n from (select 1 from dead_letters limit ${DEAD_LETTER_CAP}) d`;
        const charted = new Set(perMinute.map((p) => p.wiki));
        return {
          generated_at: at.toISOString(),
          mode,
          window: { from: from.toISOString(), to: to.toISOString(), minutes },
          newest_event_time: newestMs === null
            ? null
            : new Date(newestMs).toISOString(),
          wikis: wikiOrder(perMinute, charted),
          per_minute: perMinute.map((p) => ({
            ...p,
            minute: iso(p.minute),
          })),
          totals: totals!,
          top_pages: topPages.map((p) => ({
            ...p,
            last_edit: iso(p.last_edit),
          })),
          new_pages: newPages.map((p) => ({
            ...p,
            event_time: iso(p.event_time),
          })),
          dead_letters: {
            count: dl?.n ?? 0,
            capped: (dl?.n ?? 0) >= DEAD_LETTER_CAP,
          },
        } satisfies DashboardSnapshot;
      }) as Promise<DashboardSnapshot>,
  };
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

/** Busiest wiki first, "(other)" last. */
function wikiOrder(points: MinutePoint[], wikis: Set<string>): string[] {
  const sum = new Map<string, number>();
  for (const p of points) sum.set(p.wiki, (sum.get(p.wiki) ?? 0) + p.changes);
  return [...wikis].sort((a, b) =>
    (a === "(other)" ? 1 : 0) - (b === "(other)" ? 1 : 0) ||
    sum.get(b)! - sum.get(a)! || a.localeCompare(b)
  );
}
