/**
 * Faults inside the write's pipelined statements (the locks with the retention check; the rollups,
 * the redaction lock, the records and the lookup), on real PostgreSQL: the sink throws the first
 * failing statement's own error, never the 25P02 of a statement behind it, so a lock timeout or a
 * revoked grant is retried without dead letters or a new pool, a row error is bisected to one dead
 * letter, a dropped connection replaces the pool, and the connection an aborted write used writes
 * the next batch.
 */
import assert from "node:assert/strict";
import { createSink, type Sink, type SinkRow } from "../../lib/sink/sink.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { MERGE_LOCK, REDACTION_LOCK } from "../../lib/sink/_locks.ts";
import { adminUrl } from "../_pg_admin.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { freshDatabase, replayedRecords } from "./_consumer_fixture.ts";
import { holding, rowsOf } from "./_concurrent_fixture.ts";

/** A fresh, migrated database whose sessions give up a lock after `lockTimeout` (or never). */
async function database(lockTimeout?: string) {
  const db = await freshDatabase(testConfig().DATABASE_URL);
  if (lockTimeout) {
    const root = connectDb(await adminUrl(), { max: 1 });
    const name = new URL(db.url).pathname.slice(1);
    await root.unsafe(
      `alter database ${name} set lock_timeout = '${lockTimeout}'`,
    );
    await root.end();
  }
  await migrate(db.sql);
  return db;
}

/**
 * A sink owning a pool of one connection, warmed by one write of other rows so that every
 * statement of the write is prepared on it and its groups go out pipelined (a statement's first
 * use waits for its description); a retry reuses the aborted write's connection.
 */
async function warmSink(
  sql: Sql,
  url: string,
  options: { directCopy?: boolean; writeTimeoutMs?: number } = {},
) {
  const log = captureLogger("warn");
  /** Every statement as it is handed to the connection (sent, or queued behind a describe). */
  const sent: string[] = [];
  const sink = createSink(
    (session) =>
      connectDb(url, { max: 1, ...session, onQuery: (q) => sent.push(q) }),
    { log, ...options },
  );
  // Other rcids, ten minutes later: a page deletion and a restore among them.
  const warm = rowsOf(replayedRecords(184, 184 * 10), 0);
  assert.equal((await sink.write(warm)).inserted, warm.length);
  const replaced = () =>
    log.lines.filter((l) => l.msg === "database pool replaced").length;
  return { sink, log, replaced, sent, before: await counts(sql) };
}

/** Runs `write` while another session holds `lock` in its transaction; returns its error. */
function whileHeld(sql: Sql, lock: string, write: () => Promise<unknown>) {
  return holding(sql, lock, () => write().then(() => null, (err) => err));
}

/** The error is PostgreSQL's `code`, as the first failing statement raised it. */
function assertCode(err: unknown, code: string): void {
  const e = err as { name?: string; code?: string } | null;
  assert.equal(e?.name, "PostgresError", String(err));
  assert.equal(e?.code, code, `${e?.code}: ${String(err)}`);
}

interface Counts {
  rows: number;
  minutes: number;
  dead: number;
}

async function counts(sql: Sql): Promise<Counts> {
  const [r] = await sql<Counts[]>`
    select (select count(*)::int from wiki_recent_changes) as rows,
      (select count(*)::int from wiki_activity_minute) as minutes,
      (select count(*)::int from dead_letters) as dead`;
  return r!;
}

/** The batch writes on the same sink once the fault is gone, rollups and redactions included. */
async function assertWrites(
  sink: Sink,
  sql: Sql,
  rows: SinkRow[],
  before: Counts,
) {
  const res = await sink.write(rows);
  assert.equal(res.inserted, rows.length);
  const c = await counts(sql);
  assert.equal(c.rows, before.rows + rows.length);
  assert.ok(c.minutes > before.minutes);
  assert.equal(c.dead, 0);
}

const redactionLock = `select pg_advisory_xact_lock(${REDACTION_LOCK})`;
const mergeLock = `select pg_advisory_xact_lock(${MERGE_LOCK})`;

for (const directCopy of [true, false]) {
  const how = directCopy ? "direct" : "merge only";
  Deno.test(`pipelined (${how}): the redaction lock past lock_timeout throws 55P03, and the connection writes the batch after`, async () => {
    await using db = await database("300ms");
    const { sink, replaced, before } = await warmSink(db.sql, db.url, {
      directCopy,
    });
    try {
      // 184 rows: a page deletion and a restore among them, so the records are pipelined too.
      const rows = rowsOf(replayedRecords(184), 0);
      const err = await whileHeld(
        db.sql,
        redactionLock,
        () => sink.write(rows),
      );
      assertCode(err, "55P03");
      assert.deepEqual(await counts(db.sql), before, "rolled back whole");
      assert.equal(replaced(), 0, "a lock timeout keeps the pool");
      await assertWrites(sink, db.sql, rows, before);
    } finally {
      await sink.close();
    }
  });
}

Deno.test("pipelined: the merge lock past lock_timeout fails the locks, not the retention check behind them", async () => {
  await using db = await database("300ms");
  const { sink, replaced, before } = await warmSink(db.sql, db.url);
  try {
    const rows = rowsOf(replayedRecords(100), 0);
    const err = await whileHeld(db.sql, mergeLock, () => sink.write(rows));
    assertCode(err, "55P03");
    assert.deepEqual(await counts(db.sql), before, "rolled back whole");
    assert.equal(replaced(), 0);
    await assertWrites(sink, db.sql, rows, before);
  } finally {
    await sink.close();
  }
});

for (
  const [table, privilege, first] of [
    ["wiki_activity_day", "insert", "the rollups, first of their group"],
    ["wiki_page_deletions", "select", "the lookup, last of its group"],
  ] as const
) {
  Deno.test(`pipelined: a revoked grant on ${table} (${first}) throws 42501, no dead letter`, async () => {
    await using db = await database();
    const { sink, replaced, before } = await warmSink(db.sql, db.url);
    try {
      // No log rows: the group is the rollups, the redaction lock and the lookup.
      const rows = rowsOf(replayedRecords(100), 0);
      await db.sql.unsafe(`revoke ${privilege} on ${table} from current_user`);
      const err = await sink.write(rows).then(() => null, (e) => e);
      assertCode(err, "42501");
      assert.match(String((err as Error).message), new RegExp(table));
      assert.deepEqual(await counts(db.sql), before, "rolled back whole");
      assert.equal(replaced(), 0);
      await db.sql.unsafe(`grant ${privilege} on ${table} to current_user`);
      await assertWrites(sink, db.sql, rows, before);
    } finally {
      await sink.close();
    }
  });
}

Deno.test("pipelined: a row error in the rollups (first of the group) bisects to that row alone", async () => {
  await using db = await database();
  const { sink, before } = await warmSink(db.sql, db.url);
  try {
    const rows = rowsOf(replayedRecords(100), 0);
    // A minute whose only growing edit is `bad`: its bytes_added is at the bigint maximum.
    const grows = (r: SinkRow) =>
      (r.change_type === "edit" || r.change_type === "new") &&
      (r.new_len ?? 0) > (r.old_len ?? 0);
    const minuteOf = (r: SinkRow) => `${r.wiki} ${r.event_time.slice(0, 16)}`;
    const bad = rows.find((r) =>
      grows(r) &&
      rows.filter((o) => grows(o) && minuteOf(o) === minuteOf(r)).length === 1
    )!;
    await db.sql`insert into wiki_activity_minute (wiki, minute, bytes_added)
      values (${bad.wiki}, date_trunc('minute', ${bad.event_time}::timestamptz),
        9223372036854775807)
      on conflict (wiki, minute) do update set bytes_added = excluded.bytes_added`;
    const res = await sink.write(rows);
    assert.equal(res.inserted, rows.length - 1);
    assert.deepEqual(res.deadLettered.map((d) => d.offset), [bad.kafka_offset]);
    assert.equal((await counts(db.sql)).rows, before.rows + rows.length - 1);
    const [dl] = await db.sql`select error from dead_letters`;
    assert.match(String(dl!.error), /22003|out of range/);
  } finally {
    await sink.close();
  }
});

Deno.test("pipelined: a connection dropped while the group waits on the redaction lock replaces the pool", async () => {
  await using db = await database();
  const { sink, replaced, sent, before } = await warmSink(db.sql, db.url);
  try {
    const rows = rowsOf(replayedRecords(184), 0);
    let lastSent = "";
    const err = await whileHeld(db.sql, redactionLock, async () => {
      const writing = sink.write(rows);
      writing.catch(() => {});
      const [w] = await eventually(
        async () => {
          const found = await db.sql<{ pid: number }[]>`
          select pid from pg_locks where locktype = 'advisory' and not granted`;
          return found.length > 0 && found;
        },
        20_000,
        20,
      );
      // Pipelined: the lookup went out behind the lock the session waits on.
      lastSent = sent.at(-1) ?? "";
      await db.sql`select pg_terminate_backend(${w!.pid})`;
      return await writing;
    });
    assert.match(lastSent, /as pages/, "the group was in flight when dropped");
    assert.ok(err, "the write failed");
    assert.notEqual((err as { code?: string }).code, "25P02");
    await eventually(() => replaced() === 1, 10_000, 20);
    assert.deepEqual(await counts(db.sql), before, "rolled back whole");
    await assertWrites(sink, db.sql, rows, before);
  } finally {
    await sink.close();
  }
});

Deno.test("pipelined: a column's type changed under the prepared rollups names 42804, not the 25P02 of the statements behind them", async () => {
  await using db = await database();
  const { sink, replaced, before } = await warmSink(db.sql, db.url, {
    writeTimeoutMs: 15_000,
  });
  try {
    const rows = rowsOf(replayedRecords(100), 0);
    // A bad deploy: the rollups' prepared insert no longer fits. postgres.js retries a prepared
    // statement whose error comes from transformAssignedExpr (or FetchPreparedStatement,
    // RevalidateCachedQuery) by sending it again behind the statements already pipelined, which
    // fail first, with 25P02: their error must not stand for the write's.
    await db.sql.unsafe(`alter table wiki_activity_day
      alter column changes drop default,
      alter column changes type jsonb using to_jsonb(changes)`);
    const err = await sink.write(rows).then(() => null, (e) => e);
    assertCode(err, "42804");
    assert.equal(replaced(), 0, "an error PostgreSQL answered keeps the pool");
    await db.sql.unsafe(`alter table wiki_activity_day
      alter column changes type bigint using (changes #>> '{}')::bigint,
      alter column changes set default 0`);
    await assertWrites(sink, db.sql, rows, before);
  } finally {
    await sink.close();
  }
});
