/** @module The dashboard's data: bounded, indexed queries over the chosen window of activity. */
import type { Sql, Transaction } from "../sink/db.ts";
import {
  readWindow,
  type TimeWindow,
  type WindowKey,
} from "./_dashboard_window.ts";
import type { MonitorDb } from "../sink/monitor_db.ts";

export {
  isWindowKey,
  WINDOW_KEYS,
  type WindowKey,
} from "./_dashboard_window.ts";

/** Changes of one wiki in one chart bucket starting at `minute` (the busiest few wikis; the rest are "(other)"). */
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
 * What the dashboard shows. `mode` says what the window is relative to: `live` (now; the newest
 * event is less than an hour old), `replay` (the newest event, for recorded or stalled data) or
 * `empty` (no rows yet; now). `per_minute` holds one point per wiki and chart bucket
 * (`window.bucket_minutes` wide: 1 for the 1 h window).
 */
export interface DashboardSnapshot {
  generated_at: string;
  mode: "live" | "replay" | "empty";
  window: {
    key: WindowKey;
    from: string;
    to: string;
    minutes: number;
    bucket_minutes: number;
  };
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

/** Reads the dashboard's snapshot of a window (default: 1 h when live, all of a replay). */
export interface DashboardData {
  snapshot(options?: { window?: WindowKey }): Promise<DashboardSnapshot>;
}

/** Options for {@linkcode createDashboardData}. */
export interface DashboardDataOptions {
  /** Wikis drawn separately in the chart; the rest are summed as "(other)" (default 8). */
  maxWikis?: number;
  /** Rows in each table (default 10). */
  limit?: number;
  /** Per-query cap, so a slow dashboard never loads the database (default 5000). */
  statementTimeoutMs?: number;
  now?: () => Date;
  /** Called with each query's name and duration (bench:history times them one by one). */
  observe?: (query: string, ms: number) => void;
}

const DEAD_LETTER_CAP = 100_000;

/** Creates the PostgreSQL-backed dashboard data source (on the monitoring pool, or any pool). */
export function createDashboardData(
  db: Sql | MonitorDb,
  options: DashboardDataOptions = {},
): DashboardData {
  const use = isMonitorDb(db)
    ? db.use
    : <T>(fn: (sql: Sql) => Promise<T>) => fn(db);
  const settings: Settings = {
    maxWikis: options.maxWikis ?? 8,
    limit: options.limit ?? 10,
    timeout: options.statementTimeoutMs ?? 5000,
    now: options.now ?? (() => new Date()),
    observe: options.observe ?? (() => {}),
  };
  return {
    snapshot: (o) =>
      use(
        (sql) =>
          sql.begin(
            "read only",
            (tx) => readSnapshot(tx, settings, o?.window),
          ) as Promise<DashboardSnapshot>,
        { timeoutMs: settings.timeout + 500 },
      ),
  };
}

/** The resolved {@linkcode DashboardDataOptions}. */
interface Settings {
  maxWikis: number;
  limit: number;
  timeout: number;
  now: () => Date;
  observe: (query: string, ms: number) => void;
}

/** Reads every part of the snapshot in one read-only transaction. */
async function readSnapshot(
  tx: Transaction,
  settings: Settings,
  key: WindowKey | undefined,
): Promise<DashboardSnapshot> {
  await tx.unsafe(
    `set local statement_timeout = ${Math.trunc(settings.timeout)}`,
  );
  const time = timer(settings.observe);
  const w = await time(
    "window",
    () => readWindow(tx, { key, now: settings.now() }),
  );
  const perMinute = await time(
    "per_minute",
    () => readPerMinute(tx, w, settings.maxWikis),
  );
  const totals = await time("totals", () => readTotals(tx, w));
  const topPages = await time(
    "top_pages",
    () => readTopPages(tx, w, settings.limit),
  );
  const newPages = await time(
    "new_pages",
    () => readNewPages(tx, w, settings.limit),
  );
  const deadLetters = await time("dead_letters", () => countDeadLetters(tx));
  const charted = new Set(perMinute.map((p) => p.wiki));
  return {
    generated_at: w.at.toISOString(),
    mode: w.mode,
    window: {
      key: w.key,
      from: w.from.toISOString(),
      to: w.to.toISOString(),
      minutes: (w.to.getTime() - w.from.getTime()) / 60_000,
      bucket_minutes: w.bucketMinutes,
    },
    newest_event_time: w.newestMs === null
      ? null
      : new Date(w.newestMs).toISOString(),
    wikis: wikiOrder(perMinute, charted),
    per_minute: perMinute.map((p) => ({ ...p, minute: iso(p.minute) })),
    totals,
    top_pages: topPages.map((p) => ({ ...p, last_edit: iso(p.last_edit) })),
    new_pages: newPages.map((p) => ({ ...p, event_time: iso(p.event_time) })),
    dead_letters: deadLetters,
  } satisfies DashboardSnapshot;
}

/** Changes per bucket of the busiest wikis, the rest summed as "(other)". */
async function readPerMinute(
  tx: Transaction,
  { from, to, bucketMinutes }: TimeWindow,
  maxWikis: number,
): Promise<MinutePoint[]> {
  const bucket = `${bucketMinutes} minutes`;
  return await tx<MinutePoint[]>`
    with w as (
      select wiki, date_bin(${bucket}::interval, minute, ${from}) as minute, changes
      from wiki_activity_minute
      where minute >= ${from} and minute < ${to}
    ), top as (
      select wiki from w group by wiki order by sum(changes) desc, wiki limit ${maxWikis}
    )
    select case when wiki in (select wiki from top) then wiki else '(other)' end as wiki,
      minute, sum(changes)::int as changes
    from w group by 1, 2 order by 2, 1`;
}

/** The window's totals, from the per-minute activity. */
async function readTotals(
  tx: Transaction,
  { from, to }: TimeWindow,
): Promise<DashboardSnapshot["totals"]> {
  const [totals] = await tx<DashboardSnapshot["totals"][]>`
    select coalesce(sum(changes), 0)::int as changes,
      coalesce(sum(bot_changes), 0)::int as bots,
      coalesce(sum(anon_changes), 0)::int as anonymous,
      greatest(coalesce(sum(changes - bot_changes - anon_changes), 0), 0)::int as humans,
      coalesce(sum(new_pages), 0)::int as new_pages
    from wiki_activity_minute where minute >= ${from} and minute < ${to}`;
  return totals!;
}

/** The most-edited pages of the window, each with its latest title. */
async function readTopPages(
  tx: Transaction,
  { from, to }: TimeWindow,
  limit: number,
): Promise<TopPage[]> {
  // Index-only scan of the window (0002), then one title lookup per top page.
  return await tx<TopPage[]>`
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
}

/** The newest pages created in the window. */
async function readNewPages(
  tx: Transaction,
  { from, to }: TimeWindow,
  limit: number,
): Promise<NewPage[]> {
  return await tx<NewPage[]>`
    select wiki, title, user_name, event_time from wiki_recent_changes
    where change_type = 'new' and event_time >= ${from} and event_time < ${to}
    order by event_time desc limit ${limit}`;
}

/** Counts the dead letters not yet replayed, up to a cap, so the count stays cheap on a large table. */
async function countDeadLetters(
  tx: Transaction,
): Promise<DashboardSnapshot["dead_letters"]> {
  const [dl] = await tx<{ n: number }[]>`
    select count(*)::int as n from (
      select 1 from dead_letters where replayed_at is null limit ${DEAD_LETTER_CAP}) d`;
  return {
    count: dl?.n ?? 0,
    capped: (dl?.n ?? 0) >= DEAD_LETTER_CAP,
  };
}

/** Runs a query and reports how long it took. */
function timer(observe: Settings["observe"]) {
  return async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    observe(name, performance.now() - t0);
    return r;
  };
}

function isMonitorDb(db: Sql | MonitorDb): db is MonitorDb {
  return typeof (db as MonitorDb).failing === "function";
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
