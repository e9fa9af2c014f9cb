/** @module The consumer's lag report, stall check and readiness check. */
import type { MonitorDb } from "../sink/monitor_db.ts";
import type { Admin } from "../kafka/client.ts";
import { fetchLag } from "../kafka/lag.ts";
import type { ConsumerStats } from "../sink/batch_handler.ts";
import type { CheckResult } from "../http/app.ts";
import type { LagReport } from "./consumer.ts";
import { explainError } from "../core/errors.ts";
import type { RetentionWatch } from "./_retention.ts";

/** What the consumer tracks between batches: for idle exit and health. */
export interface Progress {
  /** When a batch last started or committed, or lag was last seen at zero. */
  lastActivity: number;
  lastLag: { total: bigint; at: number };
}

/** Where {@linkcode createLagReporter} reads lag and the newest event from. */
export interface LagSources {
  db: MonitorDb;
  admin: Admin;
  groupId: string;
  topic: string;
  stats: ConsumerStats;
  progress: Progress;
  retention: RetentionWatch;
}

/** The `/lag` report; also refreshes the lag behind health and counts zero lag as progress. */
export function createLagReporter(
  sources: LagSources,
): () => Promise<LagReport> {
  const { db, admin, groupId, topic, stats, progress, retention } = sources;
  return async function lag(): Promise<LagReport> {
    const partitions = await fetchLag(admin, { groupId, topic });
    retention.check(partitions);
    const total = partitions.reduce((a, p) => a + BigInt(p.lag), 0n);
    progress.lastLag = { total, at: Date.now() };
    if (total === 0n) progress.lastActivity = Date.now(); // caught up counts as progress
    const newest = await newestEventTime(db, stats);
    return {
      group: groupId,
      topic,
      partitions,
      total_lag: total.toString(),
      newest_event_time: newest ? newest.toISOString() : null,
      time_lag_seconds: newest
        ? Math.max(0, Math.round((Date.now() - newest.getTime()) / 1000))
        : null,
      lost_to_retention: retention.losses,
    };
  };
}

/**
 * Unhealthy when lag is pending and no batch was written for `stallMs` (counted from `started`),
 * naming the database error that keeps the writes failing, if one does.
 */
export function stallCheck(
  progress: Progress,
  options: { started: number; stallMs: number; stats?: ConsumerStats },
): CheckResult {
  const { lastActivity, lastLag } = progress;
  const pending = lastLag.total > 0n;
  const since = Date.now() - Math.max(lastActivity, options.started);
  if (pending && since > options.stallMs) {
    const failing = options.stats?.dbFailing;
    const cause = failing
      ? `; database writes failing since ${
        new Date(failing.since).toISOString()
      }: ${explainError({ name: "PostgreSQL", ...failing })}`
      : "";
    return {
      ok: false,
      reason: `No batch written for ${
        Math.round(since / 1000)
      } s while lag is ${lastLag.total}${cause}`,
    };
  }
  return { ok: true };
}

/**
 * Ready when PostgreSQL answers and the events topic's metadata can be read; otherwise the reason
 * names the failing dependency and its error (passwords masked).
 */
export async function dependenciesReady(
  db: MonitorDb,
  admin: Admin,
  topic: string,
): Promise<CheckResult> {
  try {
    await db.use((sql) => sql`select 1`);
  } catch (err) {
    return {
      ok: false,
      reason: `PostgreSQL unavailable: ${explainError(err)}`,
      details: { dependency: "postgresql" },
    };
  }
  try {
    await admin.fetchTopicMetadata({ topics: [topic] });
  } catch (err) {
    return {
      ok: false,
      reason: `Kafka metadata unavailable: ${explainError(err)}`,
      details: { dependency: "kafka" },
    };
  }
  return { ok: true };
}

/** Unhealthy when every monitoring query has failed for longer than `stallMs`. */
export function monitorCheck(db: MonitorDb, stallMs: number): CheckResult {
  const f = db.failing();
  if (!f || Date.now() - f.since <= stallMs) return { ok: true };
  return {
    ok: false,
    reason: `Monitoring queries failing for ${
      Math.round((Date.now() - f.since) / 1000)
    } s: PostgreSQL unavailable: ${explainError(f.error)}`,
  };
}

/** The newest event written: from this run's stats, else from the table (last 7 days). */
async function newestEventTime(
  db: MonitorDb,
  stats: ConsumerStats,
): Promise<Date | null> {
  if (stats.lastEventMs) return new Date(stats.lastEventMs);
  const [row] = await db.use((sql) =>
    sql<
      { t: Date | null }[]
    >`select max(event_time) as t from wiki_recent_changes
      where event_time > now() - interval '7 days'`
  ).catch(() => [{ t: null }]);
  return row?.t ?? null;
}
