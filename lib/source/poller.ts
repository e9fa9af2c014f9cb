/** @module Polls one wiki's recent changes with an overlap window and a seen-set; never a gap. */
import { type CheckpointValue, Cursor } from "./cursor.ts";
import { siftPageRows } from "./_page_rows.ts";
import { PollBackoff } from "./_poll_backoff.ts";
import type { RecentChangesSource, SiteInfo } from "./action_api.ts";
import type { Logger } from "../core/log.ts";
import { sleep as defaultSleep } from "../core/retry.ts";
import type { OutRecord } from "../kafka/client.ts";
import type { ProgressReporter } from "../core/progress.ts";

/** Publishes one page's records atomically (events, rejects and the checkpoint together). */
export interface Publisher {
  publish(records: OutRecord[]): Promise<void>;
}

/** Counters the poller bumps (metrics read them). */
export interface PollerStats {
  polls: number;
  published: number;
  rejected: number;
  duplicates: number;
  apiErrors: Record<string, number>;
  lastSuccessMs: number;
  lastEventMs: number;
}

/** Options for {@linkcode pollWiki}. */
export interface PollerOptions {
  host: string;
  source: RecentChangesSource;
  publisher: Publisher;
  topics: { events: string; checkpoints: string; rejects: string };
  /** Checkpoints restored from Kafka, by wiki. */
  restored: Map<string, CheckpointValue>;
  overlapMs: number;
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
  };
}

/**
 * Follows one wiki until `signal` aborts (or, with `until`, until every change up to then is
 * published). Each page is one transaction: its new rows, its rejects and the advanced cursor.
 * Any failure is logged, counted and retried from the last committed cursor after a backoff.
 */
export async function pollWiki(options: PollerOptions): Promise<void> {
  const { host, log, signal } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const stats = options.stats ?? newPollerStats();
  const backoff = new PollBackoff({ host, log, signal, stats, sleep });
  const site = await resolveSite(options, backoff);
  const walk = new WikiWalk(options, { site, stats, now, backoff });
  walk.logStart();
  while (!signal.aborted) {
    const start = walk.nextStart();
    try {
      await walk.catchUp(start);
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
  serverName: string;
  topics: { events: string; checkpoints: string; rejects: string };
  overlapMs: number;
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
    next = cursor.advance([...fresh, ...rejectedIds], options.overlapMs);
    records.push({
      topic: topics.checkpoints,
      key: wiki,
      value: JSON.stringify(next.toCheckpoint(wiki, options.host, options.now)),
    });
  }
  return { records, fresh, next, duplicates, rejected };
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

/** The restored checkpoint (moved up to a later `since`), or else `since`, or else now. */
function startCursor(
  options: PollerOptions,
  site: SiteInfo,
  restored: CheckpointValue | undefined,
): Cursor {
  const { since } = options;
  if (!restored) return Cursor.at(since ?? site.now);
  const cursor = Cursor.fromCheckpoint(restored);
  if (since && Date.parse(restored.last_ts) < Date.parse(since)) {
    // --since later than the checkpoint: jump forward. Otherwise the checkpoint wins, so the same
    // backfill command, run again after a stop, resumes instead of starting over.
    return Cursor.fromCheckpoint({ ...restored, floor: since, last_ts: since });
  }
  return cursor;
}

/** What a {@linkcode WikiWalk} shares with the rest of the poll. */
interface WalkDeps {
  site: SiteInfo;
  stats: PollerStats;
  now: () => number;
  backoff: PollBackoff;
}

/** One wiki's cursor, and the walks through its pages that publish and advance it. */
class WikiWalk {
  #options: PollerOptions;
  #deps: WalkDeps;
  #log: Logger;
  #resumed: boolean;
  #cursor: Cursor;
  #firstMs: number;

  constructor(options: PollerOptions, deps: WalkDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#log = options.log.with({ wiki: deps.site.wiki, host: options.host });
    const restored = options.restored.get(deps.site.wiki);
    this.#resumed = Boolean(restored);
    this.#cursor = startCursor(options, deps.site, restored);
    this.#firstMs = Date.parse(this.nextStart());
  }

  logStart(): void {
    this.#log.info("polling", {
      from: this.nextStart(),
      until: this.#options.until ?? null,
      resumed: this.#resumed,
      seen: this.#cursor.seenCount,
    });
  }

  /** Where the next walk starts: the cursor, minus the overlap. */
  nextStart(): string {
    return this.#cursor.startFor(this.#options.overlapMs);
  }

  /** Fetches and publishes page after page from `start`, until no continuation is left. */
  async catchUp(start: string): Promise<void> {
    const { host, source, signal, until } = this.#options;
    const { stats, now, backoff } = this.#deps;
    let cont: Record<string, string> | undefined;
    do {
      const page = await source.fetchPage(host, {
        start,
        end: until,
        continue: cont,
      }, { signal });
      stats.polls++;
      await this.#publish(page.rows);
      stats.lastSuccessMs = now();
      backoff.reset();
      cont = page.continue;
    } while (cont && !signal.aborted);
  }

  logComplete(): void {
    this.#options.progress?.(this.#deps.site.wiki, 1, "done");
    this.#log.info("backfill complete", {
      until: this.#options.until,
      published: this.#deps.stats.published,
    });
  }

  /** Publishes a page's transaction, if it has anything to publish, and moves the cursor. */
  async #publish(rows: unknown[]): Promise<void> {
    const { host, topics, overlapMs, publisher } = this.#options;
    const { site: { wiki, serverName }, stats, now } = this.#deps;
    const built = buildPage(rows, {
      cursor: this.#cursor,
      wiki,
      host,
      serverName,
      topics,
      overlapMs,
      now: new Date(now()),
    });
    const { records, fresh, next } = built;
    stats.duplicates += built.duplicates;
    if (records.length === 0) return;
    await publisher.publish(records);
    this.#cursor = next;
    stats.published += fresh.length;
    stats.rejected += built.rejected;
    if (fresh.length > 0) stats.lastEventMs = this.#cursor.lastMs;
    this.#logPublished(fresh.length, built.rejected);
  }

  #logPublished(rows: number, rejects: number): void {
    const { until, topics: { rejects: topic } } = this.#options;
    const { wiki } = this.#deps.site;
    const lastMs = this.#cursor.lastMs;
    if (rejects > 0) this.#log.warn("rows rejected", { count: rejects, topic });
    const done = progress(this.#firstMs, lastMs, until, this.#deps.now());
    this.#log.info("published", {
      rows,
      rejected: rejects,
      last_ts: new Date(lastMs).toISOString(),
      progress: done,
    });
    this.#options.progress?.(wiki, done, new Date(lastMs).toISOString());
  }
}

function progress(
  firstMs: number,
  lastMs: number,
  until: string | undefined,
  nowMs: number,
): number {
  const end = until ? Date.parse(until) : nowMs;
  if (end <= firstMs) return 1;
  return Math.round(
    Math.min(1, Math.max(0, (lastMs - firstMs) / (end - firstMs))) * 1000,
  ) / 1000;
}
