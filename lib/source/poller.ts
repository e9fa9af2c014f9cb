/** @module Polls one wiki's recent changes with an overlap window and a seen-set; never a gap. */
import { ApiRowSchema, type Envelope } from "../schemas/wikimedia.ts";
import { type CheckpointValue, Cursor } from "./cursor.ts";
import { messageKey } from "./normalise.ts";
import type { RecentChangesSource, SiteInfo } from "./action_api.ts";
import type { Logger } from "../core/log.ts";
import {
  backoffDelay,
  retryAfterOf,
  sleep as defaultSleep,
} from "../core/retry.ts";
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
  const { host, source, signal, log } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const stats = options.stats ?? newPollerStats();
  let failures = 0;

  const onError = async (err: unknown) => {
    if (signal.aborted) throw err;
    const code = (err as { code?: string }).code ?? (err as Error).name ??
      "error";
    stats.apiErrors[code] = (stats.apiErrors[code] ?? 0) + 1;
    const delay = Math.max(
      backoffDelay(failures, { minTimeout: 1000, maxTimeout: 300_000 }),
      retryAfterOf(err),
    );
    failures++;
    log.warn("poll failed, retrying", { host, err, delay_ms: delay, failures });
    await sleep(delay, signal);
  };

  let site: SiteInfo | undefined;
  while (!site) {
    try {
      site = await source.siteInfo(host, { signal });
    } catch (err) {
      await onError(err);
    }
  }
  const { wiki, serverName } = site;
  const wlog = log.with({ wiki, host });
  const restored = options.restored.get(wiki);
  let cursor = restored
    ? Cursor.fromCheckpoint(restored)
    : Cursor.at(options.since ?? site.now);
  if (
    restored && options.since &&
    Date.parse(restored.last_ts) < Date.parse(options.since)
  ) {
    // --since later than the checkpoint: jump forward. Otherwise the checkpoint wins, so the same
    // backfill command, run again after a stop, resumes instead of starting over.
    cursor = Cursor.fromCheckpoint({
      ...restored,
      floor: options.since,
      last_ts: options.since,
    });
  }
  wlog.info("polling", {
    from: cursor.startFor(options.overlapMs),
    until: options.until ?? null,
    resumed: Boolean(restored),
    seen: cursor.seenCount,
  });
  const firstMs = Date.parse(cursor.startFor(options.overlapMs));

  while (!signal.aborted) {
    let cont: Record<string, string> | undefined;
    const start = cursor.startFor(options.overlapMs);
    try {
      do {
        const page = await source.fetchPage(host, {
          start,
          end: options.until,
          continue: cont,
        }, { signal });
        stats.polls++;
        const built = buildPage(page.rows, {
          cursor,
          wiki,
          host,
          serverName,
          topics: options.topics,
          overlapMs: options.overlapMs,
          now: new Date(now()),
        });
        const { records, fresh, next } = built;
        stats.duplicates += built.duplicates;
        const rejects = built.rejected;
        if (records.length > 0) {
          await options.publisher.publish(records);
          cursor = next;
          stats.published += fresh.length;
          stats.rejected += rejects;
          if (fresh.length > 0) stats.lastEventMs = cursor.lastMs;
          if (rejects > 0) {
            wlog.warn("rows rejected", {
              count: rejects,
              topic: options.topics.rejects,
            });
          }
          const done = progress(firstMs, cursor.lastMs, options.until, now());
          wlog.info("published", {
            rows: fresh.length,
            rejected: rejects,
            last_ts: new Date(cursor.lastMs).toISOString(),
            progress: done,
          });
          options.progress?.(wiki, done, new Date(cursor.lastMs).toISOString());
        }
        stats.lastSuccessMs = now();
        failures = 0;
        cont = page.continue;
      } while (cont && !signal.aborted);
    } catch (err) {
      await onError(err);
      continue;
    }
    if (options.until) {
      options.progress?.(wiki, 1, "done");
      wlog.info("backfill complete", {
        until: options.until,
        published: stats.published,
      });
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
  const records: OutRecord[] = [];
  const fresh: { rcid: string; timestampMs: number }[] = [];
  const inPage = new Set<string>();
  const rejectedIds: { rcid: string; timestampMs: number }[] = [];
  let duplicates = 0;
  for (const raw of rows) {
    const parsed = ApiRowSchema.safeParse(raw);
    if (!parsed.success) {
      // Remember a bad row's rcid (when it has one) so the overlap does not reject it again.
      const id = rawRcid(raw);
      if (id && (cursor.has(id) || inPage.has(id))) continue;
      if (id) {
        inPage.add(id);
        // A bad row never moves the cursor forward (its timestamp is not trusted).
        const ts = Math.min(rawTime(raw) ?? cursor.lastMs, cursor.lastMs);
        rejectedIds.push({ rcid: id, timestampMs: ts });
      }
      records.push(
        rejectRecord(topics.rejects, wiki, raw, parsed.error.issues, fetchedAt),
      );
      continue;
    }
    const row = parsed.data;
    if (cursor.has(row.rcid) || inPage.has(row.rcid)) {
      duplicates++;
      continue;
    }
    const envelope: Envelope = {
      v: 1,
      source: "action_api",
      wiki,
      server_name: serverName,
      fetched_at: fetchedAt,
      row: raw as Record<string, unknown>,
    };
    records.push({
      topic: topics.events,
      key: messageKey(wiki, row),
      value: JSON.stringify(envelope),
      headers: { wiki, rcid: row.rcid },
    });
    inPage.add(row.rcid);
    fresh.push({ rcid: row.rcid, timestampMs: Date.parse(row.timestamp) });
  }
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

function rawRcid(raw: unknown): string | undefined {
  const v = (raw as { rcid?: unknown } | null)?.rcid;
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  if (typeof v === "string" && /^\d{1,19}$/.test(v)) return v;
  return undefined;
}

function rawTime(raw: unknown): number | undefined {
  const v = (raw as { timestamp?: unknown } | null)?.timestamp;
  const ms = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

function rejectRecord(
  topic: string,
  wiki: string,
  raw: unknown,
  issues: { path: PropertyKey[]; message: string }[],
  fetchedAt: string,
): OutRecord {
  const reason = issues.slice(0, 3).map((i) =>
    `${i.path.join(".") || "(root)"}: ${i.message}`
  ).join("; ");
  return {
    topic,
    key: `${wiki}:reject`,
    value: JSON.stringify({
      v: 1,
      wiki,
      reason,
      fetched_at: fetchedAt,
      row: raw,
    }),
    headers: { wiki, reason: "bad_row" },
  };
}
