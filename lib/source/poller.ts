/** @module Polls one wiki's recent changes: a tail with an overlap, a wider reconcile pass, and a seen-set; never a gap. */
import type { CheckpointValue, CheckpointValueV1 } from "./cursor.ts";
import { Cursor } from "./cursor.ts";
import { siftPageRows } from "./_page_rows.ts";
import { type FailureStats, PollBackoff } from "./_poll_backoff.ts";
import { WikiWalk } from "./_wiki_walk.ts";

export type { FailureStats, SourceError } from "./_poll_backoff.ts";
import type { RecentChangesSource, SiteInfo } from "./action_api.ts";
import type { Logger } from "../core/log.ts";
import { sleep as defaultSleep } from "../core/retry.ts";
import type { OutRecord } from "../kafka/client.ts";
import type { ProgressReporter } from "../core/progress.ts";

/** Publishes one page's records atomically (events, rejects and the checkpoint together). */
export interface Publisher {
  publish(records: OutRecord[]): Promise<void>;
}

/** Rows the wiki no longer keeps between where reading should start and its oldest row. */
export interface RetentionGap {
  from: string;
  to: string;
  lost_seconds: number;
}

/** Counters the poller bumps (metrics read them). */
export interface PollerStats extends FailureStats {
  polls: number;
  published: number;
  rejected: number;
  duplicates: number;
  apiErrors: Record<string, number>;
  lastSuccessMs: number;
  lastEventMs: number;
  /** Reconcile passes completed, and the rows only they found. */
  reconciles: number;
  reconciled: number;
  /** Set when the start was older than the wiki's oldest kept row. */
  gap?: RetentionGap;
}

/** Options for {@linkcode pollWiki}. */
export interface PollerOptions {
  host: string;
  source: RecentChangesSource;
  publisher: Publisher;
  topics: { events: string; checkpoints: string; rejects: string };
  /** Checkpoints restored from Kafka, by checkpoint key. */
  restored: Map<string, CheckpointValue | CheckpointValueV1>;
  overlapMs: number;
  /** How far back (on the wiki's clock) each reconcile pass re-reads; 0 disables it. */
  reconcileWindowMs?: number;
  /** Wiki time between reconcile passes. */
  reconcileIntervalMs?: number;
  pollIntervalMs: number;
  since?: string;
  until?: string;
  log: Logger;
  signal: AbortSignal;
  stats?: PollerStats;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  /** Draws backfill progress (a terminal bar); log lines carry `progress` either way. */
  progress?: ProgressReporter;
}

/** Fresh zeroed counters. */
export function newPollerStats(): PollerStats {
  return {
    polls: 0,
    published: 0,
    rejected: 0,
    duplicates: 0,
    apiErrors: {},
    lastSuccessMs: 0,
    lastEventMs: 0,
    reconciles: 0,
    reconciled: 0,
    lastError: null,
    retryAtMs: 0,
  };
}

/**
 * The checkpoint key of a wiki: its wiki id for the live producer, and one key per range for a
 * backfill (`--since` with `--until`), so a backfill never moves the live cursor.
 */
export function checkpointKey(
  wiki: string,
  range: { since?: string; until?: string } = {},
): string {
  return range.until
    ? `backfill:${wiki}:${range.since ?? ""}:${range.until}`
    : wiki;
}

/**
 * Follows one wiki until `signal` aborts (or, with `until`, until every change up to then is
 * published). Each page is one transaction: its new rows, its rejects and the advanced cursor.
 * Any failure is logged, counted and retried from the last committed cursor after a backoff,
 * except a fatal one (a fenced publisher), which ends the poll by throwing.
 */
export async function pollWiki(options: PollerOptions): Promise<void> {
  const { host, log, signal } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const stats = options.stats ?? newPollerStats();
  const backoff = new PollBackoff({ host, log, signal, stats, sleep, now });
  const site = await resolveSite(options, backoff);
  const walk = new WikiWalk(options, { site, stats, now, backoff });
  await walk.checkRetention();
  walk.logStart();
  while (!signal.aborted) {
    try {
      await walk.catchUp(walk.nextStart());
      if (!options.until && walk.reconcileDue()) await walk.reconcile();
    } catch (err) {
      await backoff.failed(err);
      continue;
    }
    if (options.until) {
      walk.logComplete();
      return;
    }
    await sleep(options.pollIntervalMs, signal).catch(() => {});
  }
}

/** Options for {@linkcode buildPage}. */
export interface BuildPageOptions {
  cursor: Cursor;
  wiki: string;
  host: string;
  /** The checkpoint key (the wiki id, or a backfill's own key). */
  key?: string;
  serverName: string;
  topics: { events: string; checkpoints: string; rejects: string };
  /** How far behind the newest time rcids are remembered. */
  keepMs: number;
  /** The wiki's clock: no row moves the cursor past it. */
  wikiNowMs: number;
  /** Local time, stamped on the records as `fetched_at`. */
  now: Date;
}

/** What one page becomes: the records of its transaction and the cursor after it. */
export interface BuiltPage {
  /** Events, rejects and (when anything is new) the checkpoint, in publish order. */
  records: OutRecord[];
  fresh: { rcid: string; timestampMs: number }[];
  next: Cursor;
  duplicates: number;
  rejected: number;
}

/** Validates a page's rows, drops the ones already published, and builds its transaction. */
export function buildPage(
  rows: unknown[],
  options: BuildPageOptions,
): BuiltPage {
  const { cursor, wiki, serverName, topics } = options;
  const fetchedAt = options.now.toISOString();
  const { records, fresh, rejectedIds, duplicates } = siftPageRows(rows, {
    cursor,
    wiki,
    serverName,
    topics,
    fetchedAt,
  });
  const rejected = records.length - fresh.length;
  let next = cursor;
  if (records.length > 0) {
    next = cursor.advance([...fresh, ...rejectedIds], {
      keepMs: options.keepMs,
      wikiNowMs: options.wikiNowMs,
    });
    records.push(checkpointRecord(next, options));
  }
  return { records, fresh, next, duplicates, rejected };
}

/** The checkpoint record of `cursor`, under the wiki's (or the backfill's) key. */
export function checkpointRecord(
  cursor: Cursor,
  options: Pick<BuildPageOptions, "wiki" | "host" | "key" | "topics" | "now">,
): OutRecord {
  return {
    topic: options.topics.checkpoints,
    key: options.key ?? options.wiki,
    value: JSON.stringify(
      cursor.toCheckpoint(options.wiki, options.host, options.now),
    ),
  };
}

/** Asks the wiki who it is until it answers, backing off after each failure. */
async function resolveSite(
  options: PollerOptions,
  backoff: PollBackoff,
): Promise<SiteInfo> {
  const { host, source, signal } = options;
  let site: SiteInfo | undefined;
  while (!site) {
    try {
      site = await source.siteInfo(host, { signal });
    } catch (err) {
      await backoff.failed(err);
    }
  }
  return site;
}
