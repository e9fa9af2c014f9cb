/** @module Reads the `dead_letters` table for `deno task dlq:replay`: a filtered selection, in id order. */
import type { Sql } from "./db.ts";

/** Which dead letters a replay takes. */
export interface DeadLetterFilter {
  /** Only these reasons (any reason when absent). */
  reasons?: string[];
  /** received_at >= since (ISO-8601). */
  since?: string;
  /** received_at < until (ISO-8601). */
  until?: string;
  /** Also the ones already replayed (they then count as duplicates). */
  includeReplayed?: boolean;
  /** Only ids up to this one: the last id when the replay started (later ones wait for a rerun). */
  maxId?: string;
}

/** One row of `dead_letters`, as stored. */
export interface StoredDeadLetter {
  id: string;
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  reason: string;
  received_at: Date;
}

/** The highest id in `dead_letters` now ("0" when empty). */
export async function lastDeadLetterId(sql: Sql): Promise<string> {
  const [r] = await sql<{ id: string }[]>`
    select coalesce(max(id), 0)::text as id from dead_letters`;
  return r!.id;
}

/** A page holds at most this many bytes of values (and always at least one letter). */
const PAGE_BYTES = 32 * 1024 * 1024;

/**
 * The next dead letters matching `filter` with an id above `afterId`, by id: at most `limit`,
 * and no more than PAGE_BYTES of values (1 MiB records must not make a 500-letter page 500 MiB).
 */
export async function selectDeadLetters(
  sql: Sql,
  filter: DeadLetterFilter,
  page: { afterId: string; limit: number },
): Promise<StoredDeadLetter[]> {
  // bytea arrives as a Buffer, which is a Uint8Array: used as it is, no copy.
  return await sql<StoredDeadLetter[]>`
    select id::text as id, topic, partition, "offset"::text as "offset", key, value, headers,
      reason, received_at
    from dead_letters d
    where d.id in (
      select id from (
        select id, sum(coalesce(octet_length(value), 0) + coalesce(octet_length(key), 0))
          over (order by id) as upto
        from dead_letters
        where id > ${page.afterId}::bigint ${where(sql, filter)}
        order by id limit ${page.limit}) p
      where p.upto <= ${PAGE_BYTES} or p.id = (
        select min(id) from dead_letters
        where id > ${page.afterId}::bigint ${where(sql, filter)}))
    order by d.id -- the column: the bare name would sort the text alias`;
}

/** How many dead letters match `filter` (the first `limit` by id), by reason. */
export async function countDeadLetters(
  sql: Sql,
  filter: DeadLetterFilter,
  limit?: number,
): Promise<Record<string, number>> {
  const rows = await sql<{ reason: string; n: number }[]>`
    select reason, count(*)::int as n from (
      select reason from dead_letters where true ${where(sql, filter)}
      order by dead_letters.id ${
    limit === undefined ? sql`` : sql`limit ${limit}`
  }
    ) s
    group by reason order by reason`;
  return Object.fromEntries(rows.map((r) => [r.reason, r.n]));
}

/** The filter as `and ...` conditions. */
function where(sql: Sql, f: DeadLetterFilter) {
  const empty = sql``;
  return sql`${f.includeReplayed ? empty : sql`and replayed_at is null`}
    ${f.reasons ? sql`and reason = any(${f.reasons}::text[])` : empty}
    ${f.since ? sql`and received_at >= ${f.since}::timestamptz` : empty}
    ${f.until ? sql`and received_at < ${f.until}::timestamptz` : empty}
    ${f.maxId ? sql`and id <= ${f.maxId}::bigint` : empty}`;
}
