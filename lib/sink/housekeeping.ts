/** @module Partition housekeeping: months split out of the default, created ahead, dropped by retention (`deno task retention`). */
import { connectDb, type Sql } from "./db.ts";
import { dropOlderThan, ensureMonth } from "./partitions.ts";
import { configEnv, loadConfig } from "../core/config.ts";
import { helpRequested, printUsage } from "../core/cli.ts";
import { ConfigError } from "../core/errors.ts";
import { createLogger, type Logger } from "../core/log.ts";

/** Counters of the partition housekeeping (exported as metrics). */
export interface HousekeepingStats {
  runs: number;
  failures: number;
  partitionsCreated: number;
  partitionsDropped: number;
  /** Estimated rows in the dropped partitions (the planner's count, not a scan). */
  rowsDropped: number;
}

/** Options for {@linkcode runHousekeeping}. */
export interface HousekeepingOptions {
  log: Logger;
  stats: HousekeepingStats;
  /** Drop partitions whose every row is older than this many days; unset keeps everything. */
  retentionDays?: number;
  /** Months created ahead of the current one (default 2). */
  monthsAhead?: number;
  now?: () => Date;
}

/** What one housekeeping run did. */
export interface HousekeepingResult {
  created: string[];
  dropped: { partition: string; rows: number }[];
}

/** A housekeeping loop started by {@linkcode startHousekeeping}. */
export interface Housekeeper {
  stats: HousekeepingStats;
  /** Stops the loop and waits for a pass in progress. */
  stop(): Promise<void>;
}

/** Zeroed counters. */
export function newHousekeepingStats(): HousekeepingStats {
  return {
    runs: 0,
    failures: 0,
    partitionsCreated: 0,
    partitionsDropped: 0,
    rowsDropped: 0,
  };
}

/**
 * One housekeeping pass: moves rows that landed in the default partition into their months,
 * creates the coming months' partitions, then (with `retentionDays`) drops whole partitions older
 * than the cutoff. Never deletes row by row.
 */
export async function runHousekeeping(
  sql: Sql,
  options: HousekeepingOptions,
): Promise<HousekeepingResult> {
  const { log, stats } = options;
  const now = (options.now ?? (() => new Date()))();
  stats.runs++;
  try {
    const created = await createPartitions(sql, now, options.monthsAhead ?? 2);
    stats.partitionsCreated += created.length;
    for (const month of created) log.info("partition created", { month });
    const dropped = options.retentionDays === undefined
      ? []
      : await dropOlderThan(sql, retentionCutoff(now, options.retentionDays));
    for (const d of dropped) {
      stats.partitionsDropped++;
      stats.rowsDropped += d.rows;
      log.info("partition dropped by retention", {
        partition: d.partition,
        rows: d.rows,
        retention_days: options.retentionDays,
      });
    }
    return { created, dropped };
  } catch (err) {
    stats.failures++;
    throw err;
  }
}

/** The instant before which rows are past retention. */
export function retentionCutoff(now: Date, retentionDays: number): Date {
  return new Date(now.getTime() - retentionDays * 86_400_000);
}

/** Runs a pass now and then every `intervalMs`; a failed pass is logged and counted, not fatal. */
export function startHousekeeping(
  sql: Sql,
  options: Omit<HousekeepingOptions, "stats"> & {
    intervalMs: number;
    stats?: HousekeepingStats;
  },
): Housekeeper {
  const stats = options.stats ?? newHousekeepingStats();
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    running = runHousekeeping(sql, { ...options, stats }).catch((err) =>
      options.log.error("partition housekeeping failed", { err })
    );
  };
  pass();
  const timer = setInterval(pass, options.intervalMs);
  Deno.unrefTimer(timer);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** `deno task retention`: one housekeeping pass on DATABASE_URL with RETENTION_DAYS. */
export async function main(
  env: Record<string, string | undefined> = configEnv(),
  args: string[] = Deno.args,
): Promise<number> {
  if (helpRequested(args)) return printUsage("retention");
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger({ service: "retention", format: "auto" }).error(
        err.message,
      );
      return 2;
    }
    throw err;
  }
  const log = createLogger({
    service: "retention",
    level: config.LOG_LEVEL,
    format: config.LOG_FORMAT,
  });
  const sql = connectDb(config.DATABASE_URL, { max: 1 });
  try {
    const stats = newHousekeepingStats();
    const r = await runHousekeeping(sql, {
      log,
      stats,
      retentionDays: config.RETENTION_DAYS,
    });
    log.info("retention done", {
      retention_days: config.RETENTION_DAYS ?? null,
      partitions_created: r.created.length,
      partitions_dropped: r.dropped.length,
      rows_dropped: stats.rowsDropped,
    });
    return 0;
  } catch (err) {
    log.error("retention failed", { err });
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Months found in the default partition, then this month and the next `ahead` ones. */
async function createPartitions(
  sql: Sql,
  now: Date,
  ahead: number,
): Promise<string[]> {
  const stray = await sql<{ m: Date }[]>`
    select distinct date_trunc('month', event_time, 'UTC') as m
    from wiki_recent_changes_default order by 1`;
  const months = stray.map((r) => r.m);
  for (let i = 0; i <= ahead; i++) {
    months.push(
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + i, 1)),
    );
  }
  const created: string[] = [];
  for (const m of months) {
    if (await ensureMonth(sql, m)) created.push(m.toISOString().slice(0, 7));
  }
  return created;
}

if (import.meta.main) Deno.exit(await main());
