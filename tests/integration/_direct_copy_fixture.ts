/** @module What a sink write leaves, for comparing the direct COPY with the merge. */
import type { Sql } from "../../lib/sink/db.ts";

/** Everything a write leaves: the rows, the rollups and the recorded redactions. */
export async function sinkTables(sql: Sql): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  const queries: Record<string, string> = {
    rows: "select * from wiki_recent_changes order by wiki, rcid",
    minute: "select * from wiki_activity_minute order by wiki, minute",
    hour: "select * from wiki_activity_hour order by wiki, hour, namespace",
    day: "select * from wiki_activity_day order by wiki, day, namespace",
    pages: "select * from wiki_page_deletions order by wiki, title",
    visibility:
      "select * from wiki_visibility_changes order by wiki, target, target_id",
  };
  for (const [name, q] of Object.entries(queries)) {
    // When a row was written differs, and says nothing of how.
    out[name] = [...await sql.unsafe(q)].map(({ ingested_at: _, ...r }) => r);
  }
  return out;
}
