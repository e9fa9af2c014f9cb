/** @module Shared by the consumer tests and the bench: replayed recorded rows, fresh databases, exact-match checks. */
import assert from "node:assert/strict";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import type { Kafka, OutRecord } from "../../lib/kafka/client.ts";
import { createTransactionalPublisher } from "../../lib/kafka/publisher.ts";
import { ensureTopics } from "../../lib/kafka/topics.ts";
import { fetchLag } from "../../lib/kafka/lag.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import type { Logger } from "../../lib/core/log.ts";
import { loadRecordedWikis } from "../fakes/fake_mediawiki.ts";
import { createAppDatabase, dropDatabase } from "../_pg_admin.ts";
import { taskArgs } from "../_task.ts";

/** One envelope to publish, with the identity the table must end up holding. */
export interface ReplayedRecord {
  wiki: string;
  rcid: string;
  key: string;
  value: string;
}

/** rcids of replica `k` are shifted by `k * RCID_SHIFT` (recorded rcids are below 1e10). */
const RCID_SHIFT = 10_000_000_000n;

/**
 * The 184 recorded rows replayed `count` rows long: replica k shifts every rcid by k * 1e10 and
 * every timestamp by k minutes; no other field is changed. `from` skips the first rows, so
 * consecutive calls continue the same sequence.
 */
export function replayedRecords(count: number, from = 0): ReplayedRecord[] {
  const wikis = loadRecordedWikis();
  const base = wikis.flatMap((w) =>
    w.rows.map((row) => ({ w, row: row as Record<string, unknown> }))
  );
  const fetchedAt = "2024-04-26T00:00:00Z";
  const out: ReplayedRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const k = Math.floor(i / base.length);
    const { w, row } = base[i % base.length]!;
    const rcid = (BigInt(String(row.rcid)) + BigInt(k) * RCID_SHIFT)
      .toString();
    const ts = new Date(Date.parse(String(row.timestamp)) + k * 60_000)
      .toISOString().replace(/\.000Z$/, "Z");
    const shifted = {
      ...row,
      rcid: typeof row.rcid === "number" ? Number(rcid) : rcid,
      timestamp: ts,
    };
    const env: Envelope = {
      v: 1,
      source: "action_api",
      wiki: w.wikiid,
      server_name: w.servername,
      fetched_at: fetchedAt,
      row: shifted,
    };
    out.push({
      wiki: w.wikiid,
      rcid,
      key: `${w.wikiid}:${row.pageid ?? row.title ?? `rc${rcid}`}`,
      value: JSON.stringify(env),
    });
  }
  return out;
}

/** Creates the topic and publishes the records in transactions of `chunk` records. */
export async function publishRecords(
  kafka: Kafka,
  topic: string,
  records: ReplayedRecord[],
  options: { log: Logger; partitions?: number; chunk?: number },
): Promise<void> {
  await ensureTopics(kafka, [{ topic, partitions: options.partitions ?? 3 }]);
  const publisher = await createTransactionalPublisher(kafka, {
    transactionalId: `fill-${crypto.randomUUID().slice(0, 8)}`,
    log: options.log,
  });
  try {
    const chunk = options.chunk ?? 1000;
    for (let i = 0; i < records.length; i += chunk) {
      await publisher.publish(
        records.slice(i, i + chunk).map((r): OutRecord => ({
          topic,
          key: r.key,
          value: r.value,
          headers: { wiki: r.wiki, rcid: r.rcid },
        })),
      );
    }
  } finally {
    await publisher.disconnect();
  }
}

/**
 * A fresh database (not a schema: consumer.ts takes only DATABASE_URL) whose public schema the
 * app URL's role owns; dispose drops it.
 */
export async function freshDatabase(
  appUrl: string,
  options: { adminUrl?: string } = {},
): Promise<{ url: string; sql: Sql } & AsyncDisposable> {
  const name = `ws_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = await createAppDatabase(appUrl, name, options.adminUrl);
  const sql = connectDb(url, { max: 2 });
  return {
    url,
    sql,
    async [Symbol.asyncDispose]() {
      await sql.end({ timeout: 5 });
      await dropDatabase(name, options.adminUrl);
    },
  };
}

/**
 * Asserts the table holds exactly the source records (each (wiki, rcid) once, with the raw row
 * the source carried) and that the per-minute aggregates equal a recount from the table.
 */
export async function assertMatchesSource(
  sql: Sql,
  source: ReplayedRecord[],
): Promise<void> {
  const want = new Map<string, string>();
  for (const r of source) {
    const env = JSON.parse(r.value) as Envelope;
    want.set(`${r.wiki}:${r.rcid}`, JSON.stringify(sortKeys(env.row)));
  }
  const rows = await sql<{ wiki: string; rcid: string; raw: unknown }[]>`
    select wiki, rcid::text as rcid, raw from wiki_recent_changes`;
  assert.equal(rows.length, want.size, "row count equals distinct source rows");
  for (const row of rows) {
    const key = `${row.wiki}:${row.rcid}`;
    const raw = want.get(key);
    assert.ok(raw !== undefined, `unexpected row ${key}`);
    assert.equal(JSON.stringify(sortKeys(row.raw)), raw, `raw of ${key}`);
  }
  await assertAggregatesMatch(sql);
}

/** The activity counters recounted from wiki_recent_changes, in rollup column order. */
const RECOUNT = `count(*) as changes,
        count(*) filter (where change_type = 'edit') as edits,
        count(*) filter (where change_type = 'new') as new_pages,
        count(*) filter (where change_type = 'log') as log_events,
        count(*) filter (where change_type = 'categorize') as categorize,
        count(*) filter (where is_bot) as bot_changes,
        count(*) filter (where is_anon) as anon_changes,
        coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
          filter (where change_type in ('edit', 'new')), 0) as bytes_added,
        coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
          filter (where change_type in ('edit', 'new')), 0) as bytes_removed`;

/**
 * Asserts wiki_activity_minute and the hourly and daily rollups each equal a recount from
 * wiki_recent_changes (`except` both ways).
 */
export async function assertAggregatesMatch(sql: Sql): Promise<void> {
  const tables = [
    ["wiki_activity_minute", "wiki, date_trunc('minute', event_time)", "1, 2"],
    [
      "wiki_activity_hour",
      "wiki, date_trunc('hour', event_time, 'UTC'), coalesce(namespace, -1)",
      "1, 2, 3",
    ],
    [
      "wiki_activity_day",
      "wiki, date_trunc('day', event_time, 'UTC'), coalesce(namespace, -1)",
      "1, 2, 3",
    ],
  ] as const;
  for (const [table, keys, group] of tables) {
    const diff = await sql.unsafe(`
      with recount as (
        select ${keys}, ${RECOUNT} from wiki_recent_changes group by ${group}
      )
      select * from (select * from recount except select * from ${table}) a
      union all
      select * from (select * from ${table} except select * from recount) b
      limit 5`);
    assert.deepEqual([...diff], [], `${table} equals a recount`);
  }
}

/** Spawns consumer.ts as `deno task consume` runs it (its scoped permissions and heap cap). */
export async function spawnConsumer(
  env: Record<string, string>,
  args: string[] = [],
): Promise<Deno.ChildProcess> {
  const full = { HTTP_PORT: "0", LOG_LEVEL: "warn", ...env };
  return new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs("consume", full)), ...args],
    cwd: new URL("../../", import.meta.url),
    env: full,
    stdin: "null",
    stdout: "null",
    stderr: Deno.env.get("DEBUG_TESTS") ? "inherit" : "null",
  }).spawn();
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, sortKeys(x)]),
    );
  }
  return v;
}

/** Committed offset per partition of a group (null when none), from the broker. */
export async function committedOffsets(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<Map<number, bigint | null>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const lag = await fetchLag(admin, { groupId, topic });
    return new Map(
      lag.map((p) => [p.partition, p.committed ? BigInt(p.committed) : null]),
    );
  } finally {
    await admin.disconnect();
  }
}

/** Runs `scripts/services.sh <command>` (start-pg, stop-pg, ...); throws when it fails. */
export async function services(command: string): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: ["scripts/services.sh", command],
    cwd: new URL("../../", import.meta.url),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run services.sh ${command}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}
