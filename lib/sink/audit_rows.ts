/** @module The rcids the table holds for one wiki and time range (what the audit compares). */
import type { Sql } from "./db.ts";

/** rcids (as strings) of `wiki` whose event time lies in [since, until]. */
export async function tableRcids(
  sql: Sql,
  wiki: string,
  range: { since: string; until: string },
): Promise<Set<string>> {
  const rows = await sql<{ rcid: string }[]>`
    select rcid::text as rcid from wiki_recent_changes
    where wiki = ${wiki}
      and event_time >= ${range.since}::timestamptz
      and event_time <= ${range.until}::timestamptz`;
  return new Set(rows.map((r) => r.rcid));
}
