/** @module One wiki's cursor and the walks that publish and advance it: tail, reconcile, retention check. */
import { Cursor } from "./cursor.ts";
import type { PollBackoff } from "./_poll_backoff.ts";
import type { SiteInfo } from "./action_api.ts";
import type { Logger } from "../core/log.ts";
import {
  buildPage,
  checkpointKey,
  type PollerOptions,
  type PollerStats,
} from "./poller.ts";

/** What a {@linkcode WikiWalk} shares with the rest of the poll. */
export interface WalkDeps {
  site: SiteInfo;
  stats: PollerStats;
  now: () => number;
  backoff: PollBackoff;
}

/** Where "the oldest row" is asked from. */
const EPOCH = "1970-01-01T00:00:00Z";

/** One wiki's cursor, and the walks through its pages that publish and advance it. */
export class WikiWalk {
  #options: PollerOptions;
  #deps: WalkDeps;
  #log: Logger;
  #key: string;
  #resumed: boolean;
  #cursor: Cursor;
  #firstMs: number;
  /** The wiki's clock as last reported, and its offset from ours (used only between reports). */
  #wikiNowMs: number;
  #offsetMs: number;
  /** Set while a reconcile pass walks: the rows it publishes are the late ones. */
  #reconciling = false;

  constructor(options: PollerOptions, deps: WalkDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#log = options.log.with({ wiki: deps.site.wiki, host: options.host });
    this.#key = checkpointKey(deps.site.wiki, options);
    const restored = options.restored.get(this.#key);
    this.#resumed = Boolean(restored);
    this.#cursor = startCursor(options, deps.site, restored);
    this.#firstMs = Date.parse(this.nextStart());
    this.#wikiNowMs = Date.parse(deps.site.now);
    this.#offsetMs = this.#wikiNowMs - deps.now();
  }

  logStart(): void {
    this.#log.info("polling", {
      from: this.nextStart(),
      until: this.#options.until ?? null,
      resumed: this.#resumed,
      checkpoint: this.#key,
      seen: this.#cursor.seenCount,
    });
  }

  /** Where the next tail walk starts: the cursor, minus the overlap. */
  nextStart(): string {
    return this.#cursor.startFor(this.#options.overlapMs);
  }

  /** Whether a reconcile pass is due (on the wiki's clock). */
  reconcileDue(): boolean {
    const { overlapMs, reconcileWindowMs = 0, reconcileIntervalMs = 0 } =
      this.#options;
    if (reconcileWindowMs <= overlapMs) return false;
    return this.#wikiNowMs - this.#cursor.reconciledMs >= reconcileIntervalMs;
  }

  /** Re-reads the reconcile window (ending at the wiki's now) and publishes what the tail missed. */
  async reconcile(): Promise<void> {
    const passAt = this.#wikiNowMs;
    const start = new Date(
      Math.max(this.#cursor.floorMs, passAt - this.#windowMs()),
    ).toISOString();
    const before = this.#deps.stats.reconciled;
    this.#reconciling = true;
    try {
      await this.catchUp(start);
    } finally {
      this.#reconciling = false;
    }
    const found = this.#deps.stats.reconciled - before;
    this.#cursor = this.#cursor.reconciled(passAt);
    this.#deps.stats.reconciles++;
    const level = found > 0 ? "info" : "debug";
    this.#log[level]("reconciled", { from: start, found });
  }

  /**
   * Warns when the start is older than the oldest row the wiki still keeps (recentchanges is
   * purged after `$wgRCMaxAge`, 30 days on Wikimedia): the changes between are lost.
   */
  async checkRetention(): Promise<void> {
    if (!this.#resumed && !this.#options.since) return;
    const { host, source, signal } = this.#options;
    const startMs = Date.parse(this.nextStart());
    for (;;) {
      try {
        const page = await source.fetchPage(host, { start: EPOCH, limit: 1 }, {
          signal,
        });
        this.#observe(page.now);
        const ts = (page.rows[0] as { timestamp?: unknown } | undefined)
          ?.timestamp;
        const oldest = typeof ts === "string" ? Date.parse(ts) : NaN;
        if (oldest - startMs >= 1000) this.#reportGap(startMs, oldest);
        return;
      } catch (err) {
        await this.#deps.backoff.failed(err);
      }
    }
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
      this.#observe(page.now);
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

  /** The widest window any walk re-reads: rcids are remembered that far back. */
  #windowMs(): number {
    return Math.max(
      this.#options.overlapMs,
      this.#options.reconcileWindowMs ?? 0,
    );
  }

  /** Takes the wiki's clock from a response (or, without one, estimates it from ours). */
  #observe(wikiNow: string | undefined): void {
    const ms = wikiNow ? Date.parse(wikiNow) : NaN;
    if (Number.isNaN(ms)) {
      this.#wikiNowMs = this.#deps.now() + this.#offsetMs;
      return;
    }
    this.#wikiNowMs = ms;
    this.#offsetMs = ms - this.#deps.now();
  }

  #reportGap(startMs: number, oldestMs: number): void {
    const gap = {
      from: new Date(startMs).toISOString(),
      to: new Date(oldestMs).toISOString(),
      lost_seconds: Math.round((oldestMs - startMs) / 1000),
    };
    this.#deps.stats.gap = gap;
    this.#log.warn("recent changes lost: start is older than the wiki keeps", {
      ...gap,
      checkpoint: this.#key,
    });
  }

  /** Publishes a page's transaction, if it has anything to publish, and moves the cursor. */
  async #publish(rows: unknown[]): Promise<void> {
    const { host, topics, publisher } = this.#options;
    const { site: { wiki, serverName }, stats, now } = this.#deps;
    const built = buildPage(rows, {
      cursor: this.#cursor,
      wiki,
      host,
      key: this.#key,
      serverName,
      topics,
      keepMs: this.#windowMs(),
      wikiNowMs: this.#wikiNowMs,
      now: new Date(now()),
    });
    const { records, fresh, next } = built;
    stats.duplicates += built.duplicates;
    if (records.length === 0) return;
    await publisher.publish(records);
    this.#cursor = next;
    if (this.#reconciling) stats.reconciled += fresh.length;
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
    const done = progress(this.#firstMs, lastMs, until, this.#wikiNowMs);
    this.#log.info("published", {
      rows,
      rejected: rejects,
      last_ts: new Date(lastMs).toISOString(),
      progress: done,
    });
    this.#options.progress?.(wiki, done, new Date(lastMs).toISOString());
  }
}

/**
 * A backfill (`until` set) resumes its own checkpoint or starts at `since`. The live cursor
 * resumes its checkpoint (moved up to a later `since`), or starts at `since`, or at the wiki's now.
 */
function startCursor(
  options: PollerOptions,
  site: SiteInfo,
  restored: Parameters<typeof Cursor.fromCheckpoint>[0] | undefined,
): Cursor {
  const { since } = options;
  if (!restored) return Cursor.at(since ?? site.now);
  const cursor = Cursor.fromCheckpoint(restored);
  if (since && !options.until && cursor.lastMs < Date.parse(since)) {
    // --since later than the live checkpoint: jump forward.
    return Cursor.fromCheckpoint({ ...restored, floor: since, last_ts: since });
  }
  return cursor;
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
