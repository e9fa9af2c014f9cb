/** History at scale on real PostgreSQL: the partitioned table, its upgrade, retention, rollups. */
import assert from "node:assert/strict";
import { migrate } from "../../lib/sink/migrate.ts";
import { createSink, type SinkRow } from "../../lib/sink/sink.ts";
import { COLUMNS, copyLine } from "../../lib/sink/copy.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import {
  newHousekeepingStats,
  runHousekeeping,
} from "../../lib/sink/housekeeping.ts";
import { listPartitions } from "../../lib/sink/partitions.ts";
import { renderMetrics } from "../../lib/http/metrics.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import { adminUrl } from "../_pg_admin.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import {
  assertAggregatesMatch,
  freshDatabase,
  replayedRecords,
} from "./_consumer_fixture.ts";

const MIGRATIONS = new URL("../../migrations/", import.meta.url);

/** The replayed recorded rows (2013-2020 months) as the consumer decodes them, with offsets. */
function pipelineRows(count: number): SinkRow[] {
  return replayedRecords(count).map((r, i) => ({
    ...decodeValue(new TextEncoder().encode(r.value)),
    kafka_partition: i % 3,
    kafka_offset: String(i),
  }));
}

/** A migrations folder holding only the files from before partitioning (0001-0003). */
async function mainMigrations(): Promise<URL> {
  const dir = await Deno.makeTempDir();
  // Every migration before partitioning came in (0010): the schema of an unpartitioned install.
  for await (const f of Deno.readDir(MIGRATIONS)) {
    if (f.name.endsWith(".sql") && f.name < "0010") {
      await Deno.copyFile(new URL(f.name, MIGRATIONS), `${dir}/${f.name}`);
    }
  }
  return new URL(`file://${dir}/`);
}

/** Every column of every row, as text, in key order: equal fingerprints, equal tables. */
async function fingerprint(sql: Sql): Promise<{ n: number; md5: string }> {
  const cols = [...COLUMNS, "ingested_at"].join(", ");
  const [r] = await sql.unsafe(`
    select count(*)::int as n,
      md5(coalesce(string_agg(t::text, E'\\n' order by wiki, rcid), '')) as md5
    from (select ${cols} from wiki_recent_changes) t`);
  return r as unknown as { n: number; md5: string };
}

/** COPYs rows straight into wiki_recent_changes, as the sink's staging COPY encodes them. */
async function copyRows(sql: Sql, rows: SinkRow[]): Promise<void> {
  const copy = await sql.unsafe(
    `copy wiki_recent_changes (${COLUMNS.join(", ")}) from stdin`,
  ).writable();
  await new Promise<void>((resolve, reject) => {
    copy.on("finish", resolve);
    copy.on("error", reject);
    copy.end(rows.map(copyLine).join(""));
  });
}

async function relkind(sql: Sql, table: string): Promise<string> {
  const [r] = await sql<{ k: string }[]>`
    select relkind::text as k from pg_class where oid = to_regclass(${table})`;
  return r!.k;
}

/** Sums of the three activity tables, to compare before and after a redelivery. */
async function activitySums(sql: Sql): Promise<unknown[]> {
  return [
    ...await sql`select
      (select sum(changes)::int from wiki_activity_minute) as minute,
      (select sum(changes)::int from wiki_activity_hour) as hour,
      (select sum(changes)::int from wiki_activity_day) as day`,
  ];
}

Deno.test("migrate converts a table filled by today's main into partitions, losing and doubling nothing", async () => {
  await using db = await tempSchema(testConfig());
  await migrate(db.sql, { dir: await mainMigrations() });
  assert.equal(await relkind(db.sql, "wiki_recent_changes"), "r");
  // Filled as today's consumer does: the decoded rows, COPYed, and the minute activity counted.
  const rows = pipelineRows(184 * 6);
  await copyRows(db.sql, rows);
  await db.sql`insert into wiki_activity_minute
    select wiki, date_trunc('minute', event_time), count(*),
      count(*) filter (where change_type = 'edit'),
      count(*) filter (where change_type = 'new'),
      count(*) filter (where change_type = 'log'),
      count(*) filter (where change_type = 'categorize'),
      count(*) filter (where is_bot), count(*) filter (where is_anon),
      coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
        filter (where change_type in ('edit', 'new')), 0),
      coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
        filter (where change_type in ('edit', 'new')), 0)
    from wiki_recent_changes group by 1, 2`;
  const before = await fingerprint(db.sql);
  assert.equal(before.n, rows.length);

  const applied = await migrate(db.sql);
  assert.ok(applied.includes("0010_partitioned_history"));
  assert.equal(await relkind(db.sql, "wiki_recent_changes"), "p");
  assert.deepEqual(await fingerprint(db.sql), before);
  const [stray] = await db
    .sql`select count(*)::int as n from wiki_recent_changes_default`;
  assert.equal(stray!.n, 0, "every row is in its month's partition");
  const months = (await listPartitions(db.sql)).filter((p) => p.upper);
  assert.ok(months.length >= 4, `monthly partitions: ${months.length}`);
  await assertAggregatesMatch(db.sql);

  // Redelivered after the upgrade: nothing inserted, nothing counted twice.
  const sums = await activitySums(db.sql);
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  const again = await sink.write(rows);
  assert.equal(again.inserted, 0);
  assert.deepEqual(await fingerprint(db.sql), before);
  assert.deepEqual(await activitySums(db.sql), sums);
  await assertAggregatesMatch(db.sql);
});

Deno.test("housekeeping moves rows of a month without a partition out of the default partition", async () => {
  await using db = await tempSchema(testConfig());
  await migrate(db.sql);
  const rows = pipelineRows(184);
  // Written straight into the table, bypassing the sink's month check: they land in default.
  await copyRows(db.sql, rows);
  const before = await fingerprint(db.sql);
  const [inDefault] = await db
    .sql`select count(*)::int as n from wiki_recent_changes_default`;
  assert.ok(inDefault!.n > 0);
  const stats = newHousekeepingStats();
  const r = await runHousekeeping(db.sql, {
    log: captureLogger("warn"),
    stats,
  });
  assert.ok(r.created.length >= 3, `created ${r.created}`);
  const [left] = await db
    .sql`select count(*)::int as n from wiki_recent_changes_default`;
  assert.equal(left!.n, 0);
  assert.deepEqual(await fingerprint(db.sql), before);
  // A second write of the same rows finds them in their partitions: nothing inserted.
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  assert.equal((await sink.write(rows)).inserted, 0);
});

Deno.test("RETENTION_DAYS drops whole partitions, and a redelivered old row is not counted again", async () => {
  await using db = await tempSchema(testConfig());
  await migrate(db.sql);
  const rows = pipelineRows(184 * 3);
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  assert.equal((await sink.write(rows)).inserted, rows.length);
  // Relative to 2020-06-15, 30 days keep rows from 2020-05-16: April 2020 and older go.
  const now = () => new Date("2020-06-15T00:00:00Z");
  const stats = newHousekeepingStats();
  const log = captureLogger("info");
  const kept = rows.filter((r) => r.event_time >= "2020-05-01").length;
  const partitionsBefore = await listPartitions(db.sql);
  const r = await runHousekeeping(db.sql, {
    log,
    stats,
    now,
    retentionDays: 30,
  });
  const expectDropped = partitionsBefore.filter((p) =>
    p.upper && p.upper.getTime() <= Date.parse("2020-05-16T00:00:00Z")
  ).map((p) => p.partition);
  assert.deepEqual(r.dropped.map((d) => d.partition), expectDropped);
  assert.ok(expectDropped.length >= 4);
  assert.equal(stats.partitionsDropped, expectDropped.length);
  const left = await listPartitions(db.sql);
  for (const p of expectDropped) {
    assert.ok(!left.some((l) => l.partition === p), `${p} is gone`);
  }
  const [n] = await db.sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(n!.n, kept);
  assert.ok(
    log.lines.some((l) => l.msg === "partition dropped by retention"),
  );
  const metrics = await renderMetrics({ housekeeping: stats });
  assert.match(
    metrics,
    new RegExp(`wikistream_partitions_dropped_total ${expectDropped.length}`),
  );

  // Kafka redelivers everything: the dropped months are refused, not re-inserted or recounted.
  const sums = await activitySums(db.sql);
  const again = await sink.write(rows);
  assert.equal(again.inserted, 0);
  const [after] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(after!.n, kept);
  assert.deepEqual(await activitySums(db.sql), sums);
  // The rollups keep the history the raw rows no longer hold.
  const [day] = await db
    .sql`select sum(changes)::int as n from wiki_activity_day`;
  assert.equal(day!.n, rows.length);
});

Deno.test("a no-transaction migration runs outside a transaction, is recorded, and runs once", async () => {
  await using db = await tempSchema(testConfig());
  const dir = await mainMigrations();
  await Deno.writeTextFile(
    new URL("0004_concurrent.sql", dir),
    [
      "-- migrate: no-transaction",
      "create index concurrently if not exists wiki_recent_changes_user_idx",
      "  on wiki_recent_changes (user_name);",
      "create index concurrently if not exists dead_letters_reason_idx",
      "  on dead_letters (reason);",
    ].join("\n"),
  );
  const applied = await migrate(db.sql, { dir });
  assert.deepEqual(applied, [
    "0001_recent_changes",
    "0002_dashboard_indexes",
    "0003_redaction",
    "0004_concurrent",
  ]);
  const valid = await db.sql<{ name: string; valid: boolean }[]>`
    select c.relname as name, i.indisvalid as valid from pg_index i
    join pg_class c on c.oid = i.indexrelid
    where c.relname in ('wiki_recent_changes_user_idx', 'dead_letters_reason_idx')
    order by 1`;
  assert.deepEqual([...valid].map((v) => ({ ...v })), [
    { name: "dead_letters_reason_idx", valid: true },
    { name: "wiki_recent_changes_user_idx", valid: true },
  ]);
  assert.deepEqual(await migrate(db.sql, { dir }), []);
});

Deno.test("migrate builds the wiki/time index on every partition, valid on the parent", async () => {
  await using db = await tempSchema(testConfig());
  await migrate(db.sql);
  const [parent] = await db.sql<{ valid: boolean }[]>`
    select indisvalid as valid from pg_index
    where indexrelid = to_regclass('wiki_recent_changes_wiki_time_idx')`;
  assert.equal(parent?.valid, true);
  // A month created later gets the index too.
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  await sink.write(pipelineRows(184));
  const missing = await db.sql`
    select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'wiki_recent_changes'::regclass and not exists (
      select 1 from pg_index x join pg_inherits xi on xi.inhrelid = x.indexrelid
      where x.indrelid = c.oid
        and xi.inhparent = to_regclass('wiki_recent_changes_wiki_time_idx'))`;
  assert.deepEqual([...missing], []);
});

Deno.test("a concurrent index build that failed (lock timeout) is rebuilt valid by the next migrate", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  await migrate(db.sql);
  // As before 0012: no index, not recorded.
  await db.sql`drop index dead_letters_pending_idx`;
  await db
    .sql`delete from schema_migrations where version = '0012_dead_letter_replay'`;
  const name = new URL(db.url).pathname.slice(1);
  const root = connectDb(await adminUrl(), { max: 1 });
  await root.unsafe(`alter database ${name} set lock_timeout = '300ms'`);
  await root.end();
  // A transaction holding a snapshot (a dashboard read, a consumer write): the build waits on it.
  const holder = await db.sql.reserve();
  await holder`begin isolation level repeatable read`;
  await holder`select 1 from wiki_history_state`;
  const fresh = connectDb(db.url, { max: 1 });
  try {
    await assert.rejects(
      migrate(fresh),
      (e: { code?: string }) => e.code === "55P03",
    );
    await holder`commit`;
    holder.release();
    assert.deepEqual(await migrate(fresh), ["0012_dead_letter_replay"]);
    const [idx] = await fresh`select indisvalid from pg_index
      where indexrelid = 'dead_letters_pending_idx'::regclass`;
    assert.equal(idx!.indisvalid, true);
  } finally {
    await fresh.end();
  }
});
