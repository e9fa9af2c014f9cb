/** @module Monthly partitions of wiki_recent_changes: created on demand, listed, dropped whole. */
import type { Sql, Transaction } from "./db.ts";
import { RETENTION_LOCK } from "./_locks.ts";

/** A partition of wiki_recent_changes and its upper bound (null for the default partition). */
export interface PartitionInfo {
  partition: string;
  upper: Date | null;
}

/**
 * Remembers which months have a partition, so the sink asks PostgreSQL to create one only for a
 * month it has not seen yet (once per month per process).
 */
export class MonthPartitions {
  readonly #known = new Set<string>();

  /** Creates the partitions of the months among `eventTimes` (ISO strings) not seen before. */
  async ensure(sql: Sql, eventTimes: Iterable<string>): Promise<string[]> {
    const months = new Set<string>();
    for (const t of eventTimes) {
      const month = t.slice(0, 7);
      if (!this.#known.has(month)) months.add(month);
    }
    const created: string[] = [];
    for (const month of [...months].sort()) {
      if (await ensureMonth(sql, new Date(`${month}-01T00:00:00Z`))) {
        created.push(month);
      }
      this.#known.add(month);
    }
    return created;
  }
}

/** Creates the month's partition unless it exists (or lies below the retention horizon). */
export async function ensureMonth(sql: Sql, month: Date): Promise<boolean> {
  const [r] = await sql<{ created: boolean }[]>`
    select wikistream_ensure_month(${month}) as created`;
  return r?.created ?? false;
}

/** Lists the partitions of wiki_recent_changes, oldest first, the default last. */
export async function listPartitions(
  sql: Sql | Transaction,
): Promise<PartitionInfo[]> {
  const rows = await sql<{ partition: string; upper: Date | null }[]>`
    select c.relname as partition,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz
        as upper
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'wiki_recent_changes'::regclass
    order by upper nulls last`;
  return rows.map((r) => ({ partition: r.partition, upper: r.upper }));
}

/**
 * Drops every monthly partition whose upper bound is at or before `cutoff`, raising the retention
 * horizon in the same transaction so rows of a dropped month are refused from then on.
 */
export async function dropOlderThan(
  sql: Sql,
  cutoff: Date,
): Promise<{ partition: string; rows: number }[]> {
  const dropped: { partition: string; rows: number }[] = [];
  for (const p of await listPartitions(sql)) {
    if (p.upper === null || p.upper.getTime() > cutoff.getTime()) continue;
    const upper = p.upper;
    const rows = await sql.begin(async (tx) => {
      // Waits for in-flight writes (they hold it shared) and holds off new ones until commit.
      await tx.unsafe(`select pg_advisory_xact_lock(${RETENTION_LOCK})`);
      await tx`update wiki_history_state
        set retained_from = greatest(retained_from, ${upper})`;
      const [est] = await tx<{ n: number }[]>`
        select greatest(reltuples, 0)::float8 as n from pg_class
        where oid = to_regclass(${p.partition})`;
      await tx.unsafe(
        `alter table wiki_recent_changes detach partition ${
          ident(p.partition)
        }`,
      );
      await tx.unsafe(`drop table ${ident(p.partition)}`);
      return Math.round(est?.n ?? 0);
    });
    dropped.push({ partition: p.partition, rows });
  }
  return dropped;
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
