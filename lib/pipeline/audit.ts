/** @module `deno task audit`: compares PostgreSQL with the Action API per wiki; `--repair` republishes the missing rows. */
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import { createKafka, kafkaSecurity, type OutRecord } from "../kafka/client.ts";
import { createTransactionalPublisher } from "../kafka/publisher.ts";
import { connectDb } from "../sink/db.ts";
import { tableRcids } from "../sink/audit_rows.ts";
import { ApiRowSchema } from "../schemas/wikimedia.ts";
import {
  createWikimediaClient,
  type RecentChangesSource,
  type SiteInfo,
} from "../source/action_api.ts";
import { Cursor } from "../source/cursor.ts";
import { siftPageRows } from "../source/_page_rows.ts";
import { PollBackoff } from "../source/_poll_backoff.ts";
import { newPollerStats } from "../source/poller.ts";
import { topicNames } from "./producer.ts";

/** One wiki's result: the JSON line the audit prints. */
export interface AuditReport {
  wiki: string;
  host: string;
  since: string;
  until: string;
  source_rows: number;
  table_rows: number;
  missing: number;
  extra: number;
  /** Up to 20 of the missing rcids. */
  missing_rcids: string[];
  /** With `--repair`: rows published to the topic. */
  repaired?: number;
}

/** Options for {@linkcode runAudit}. */
export interface AuditOptions {
  since: string;
  until: string;
  /** Hosts to audit; WIKIS by default. */
  wikis?: string[];
  repair?: boolean;
  log: Logger;
  signal: AbortSignal;
  /** Where each JSON line goes. */
  print: (line: string) => void;
  source?: RecentChangesSource;
  schema?: string;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Rows per repair transaction. */
const REPAIR_CHUNK = 500;

/** Audits each wiki in turn (serial requests, like the producer); resolves to the reports. */
export async function runAudit(
  config: Config,
  options: AuditOptions,
): Promise<AuditReport[]> {
  const source = options.source ?? createWikimediaClient({
    apiUrlTemplate: config.MEDIAWIKI_API_URL,
    userAgent: config.USER_AGENT,
    timeoutMs: config.HTTP_TIMEOUT_MS,
  });
  const sql = connectDb(config.DATABASE_URL, {
    max: 1,
    ...(options.schema ? { schema: options.schema } : {}),
  });
  const reports: AuditReport[] = [];
  try {
    for (const host of options.wikis ?? config.WIKIS) {
      const audit = new WikiAudit(host, source, options);
      const site = await audit.site();
      const rows = await audit.sourceRows(site);
      const table = await tableRcids(sql, site.wiki, options);
      const report = compare(site, rows, table, options);
      if (options.repair && report.missing > 0) {
        const missing = [...rows].filter(([id]) => !table.has(id));
        report.repaired = await repair(config, site, missing, options);
      }
      options.print(JSON.stringify(report));
      reports.push(report);
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  return reports;
}

/** One wiki's reads from the API, each retried politely (Retry-After, maxlag, backoff). */
class WikiAudit {
  #host: string;
  #source: RecentChangesSource;
  #options: AuditOptions;
  #backoff: PollBackoff;

  constructor(
    host: string,
    source: RecentChangesSource,
    options: AuditOptions,
  ) {
    this.#host = host;
    this.#source = source;
    this.#options = options;
    this.#backoff = new PollBackoff({
      host,
      log: options.log,
      signal: options.signal,
      stats: newPollerStats(),
      sleep: options.sleep ?? ((ms, signal) =>
        new Promise((r) => {
          const t = setTimeout(r, ms);
          signal?.addEventListener("abort", () => {
            clearTimeout(t);
            r(undefined);
          }, { once: true });
        })),
    });
  }

  site(): Promise<SiteInfo> {
    return this.#retrying(() =>
      this.#source.siteInfo(this.#host, { signal: this.#options.signal })
    );
  }

  /** Every valid row the API lists in [since, until], by rcid. */
  async sourceRows(site: SiteInfo): Promise<Map<string, unknown>> {
    const rows = new Map<string, unknown>();
    let cont: Record<string, string> | undefined;
    do {
      const page = await this.#retrying(() =>
        this.#source.fetchPage(site.host, {
          start: this.#options.since,
          end: this.#options.until,
          continue: cont,
        }, { signal: this.#options.signal })
      );
      for (const raw of page.rows) {
        const parsed = ApiRowSchema.safeParse(raw);
        if (parsed.success) rows.set(parsed.data.rcid, raw);
      }
      cont = page.continue;
    } while (cont && !this.#options.signal.aborted);
    return rows;
  }

  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const v = await fn();
        this.#backoff.reset();
        return v;
      } catch (err) {
        await this.#backoff.failed(err);
      }
    }
  }
}

function compare(
  site: SiteInfo,
  rows: Map<string, unknown>,
  table: Set<string>,
  range: { since: string; until: string },
): AuditReport {
  const missing = [...rows.keys()].filter((id) => !table.has(id));
  const extra = [...table].filter((id) => !rows.has(id));
  return {
    wiki: site.wiki,
    host: site.host,
    since: range.since,
    until: range.until,
    source_rows: rows.size,
    table_rows: table.size,
    missing: missing.length,
    extra: extra.length,
    missing_rcids: missing.slice(0, 20),
  };
}

/**
 * Publishes exactly the missing rows through the normal topic, with the audit's own
 * transactional id and checkpoint key (never the live producer's), in transactions of 500.
 */
async function repair(
  config: Config,
  site: SiteInfo,
  missing: [string, unknown][],
  options: AuditOptions,
): Promise<number> {
  const topics = topicNames(config.KAFKA_TOPIC);
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    ...kafkaSecurity(config),
    clientId: `${config.KAFKA_CLIENT_ID}-audit`,
    log: options.log,
  });
  await using publisher = await createTransactionalPublisher(kafka, {
    transactionalId: `${config.KAFKA_TRANSACTIONAL_ID}-audit`,
    log: options.log,
  });
  const key = `audit:${site.wiki}:${options.since}:${options.until}`;
  let done = 0;
  for (let i = 0; i < missing.length; i += REPAIR_CHUNK) {
    const chunk = missing.slice(i, i + REPAIR_CHUNK).map(([, raw]) => raw);
    const { records, fresh } = siftPageRows(chunk, {
      cursor: Cursor.at(options.since),
      wiki: site.wiki,
      serverName: site.serverName,
      topics,
      fetchedAt: new Date().toISOString(),
    });
    done += fresh.length;
    const checkpoint: OutRecord = {
      topic: topics.checkpoints,
      key,
      value: JSON.stringify({
        v: 1,
        wiki: site.wiki,
        since: options.since,
        until: options.until,
        repaired: done,
        of: missing.length,
        updated_at: new Date().toISOString(),
      }),
    };
    await publisher.publish([...records, checkpoint]);
  }
  options.log.info("repair published", { wiki: site.wiki, rows: done, key });
  return done;
}
