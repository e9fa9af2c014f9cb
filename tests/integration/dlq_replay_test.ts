/** `deno task dlq:replay`: dead letters back through the sink after a fix, on real Kafka and PostgreSQL. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { migrate } from "../../lib/sink/migrate.ts";
import {
  lastDeadLetterId,
  selectDeadLetters,
} from "../../lib/sink/dead_letter_rows.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { runDlqReplay } from "../../lib/pipeline/dlq_replay.ts";
import { main as replayMain } from "../../dlq_replay.ts";
import type { Sql } from "../../lib/sink/db.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import {
  assertMatchesSource,
  freshDatabase,
  type ReplayedRecord,
  replayedRecords,
} from "./_consumer_fixture.ts";
import {
  dlqEnd,
  FIX,
  isLogRow,
  type Letter,
  letters,
  replayTask,
  setUp,
} from "./_dlq_fixture.ts";

/** Stores recorded records as dead letters the database rejected, as the consumer would. */
async function storeLetters(
  sql: Sql,
  records: ReplayedRecord[],
): Promise<void> {
  await sql`insert into dead_letters ${
    sql(records.map((r, i) => ({
      topic: "t.rc",
      partition: 0,
      offset: String(i),
      key: Buffer.from(r.key),
      value: Buffer.from(r.value),
      headers: { "dlq.reason": "database_rejected" } as never,
      reason: "database_rejected",
      error: "23514 test",
    })))
  }`;
}

function byReason(rows: { reason: string }[]): Record<string, number> {
  return rows.reduce<Record<string, number>>((m, r) => {
    m[r.reason] = (m[r.reason] ?? 0) + 1;
    return m;
  }, {});
}

Deno.test("dlq:replay puts rejected rows back once, marks them, leaves the poison record, and never writes twice", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  const config = testConfig({ DATABASE_URL: db.url });
  const records = replayedRecords(368);
  const rejected = records.filter(isLogRow).length;
  assert.ok(rejected >= 20, `${rejected} recorded log rows`);
  const kafka = await setUp(config, db.sql, records);

  // The consumer kept every other row and dead-lettered the rejected ones and the poison record.
  const before = await letters(db.sql);
  assert.deepEqual(byReason(before), {
    database_rejected: rejected,
    not_json: 1,
  });
  assert.ok(before.every((l) => !l.replayed));
  const [kept] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(kept!.n, records.length - rejected);
  const dlqBefore = await dlqEnd(kafka, config.KAFKA_TOPIC);
  assert.equal(dlqBefore, BigInt(rejected + 1));

  await beforeTheFix(db.url, db.sql, before);
  await db.sql.unsafe(FIX);
  await byTimeAndLimit(db.url, db.sql, before);
  await theRest(db.url, db.sql, before, records);

  const after = await letters(db.sql);
  assert.equal(after.length, before.length, "no new dead letter");
  assert.deepEqual(
    after.filter((l) => !l.replayed).map((l) => l.reason),
    ["not_json"],
  );
  assert.equal(
    await dlqEnd(kafka, config.KAFKA_TOPIC),
    dlqBefore,
    "nothing published to the DLQ topic",
  );
});

/** A dry run counts and writes nothing; a replay before the fix marks nothing and adds nothing. */
async function beforeTheFix(url: string, sql: Sql, before: Letter[]) {
  const rejected = before.length - 1;
  const dry = await replayTask(url, ["--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.summary?.dry_run, true);
  assert.equal(dry.summary?.selected, rejected + 1);
  assert.deepEqual(dry.summary?.selected_by_reason, byReason(before));

  const early = await replayTask(url, ["--reason", "database_rejected"]);
  assert.equal(early.code, 1, early.stderr);
  assert.equal(early.summary?.selected, rejected);
  assert.equal(early.summary?.written, 0);
  assert.deepEqual(early.summary?.still_failing_by_reason, {
    database_rejected: rejected,
  });
  assert.deepEqual(await letters(sql), before);
}

/** --since/--until select by received_at (half the letters made old), --limit caps the count. */
async function byTimeAndLimit(url: string, sql: Sql, before: Letter[]) {
  const rejectedIds = before.filter((l) => l.reason === "database_rejected")
    .map((l) => l.id);
  const old = rejectedIds.slice(0, Math.floor(rejectedIds.length / 2));
  await sql`update dead_letters set received_at = '2020-01-01T00:00:00Z'
    where id = any(${old}::bigint[])`;
  const until = await replayTask(url, [
    "--until",
    "2021-01-01T00:00:00Z",
    "--dry-run",
  ]);
  assert.equal(until.code, 0, until.stderr);
  assert.deepEqual(until.summary?.selected_by_reason, {
    database_rejected: old.length,
  });
  const since = ["--since", "2024-01-01T00:00:00Z"];
  const limited = await replayTask(url, [
    ...since,
    "--reason",
    "database_rejected",
    "--limit",
    "3",
  ]);
  assert.equal(limited.code, 0, limited.stderr);
  assert.equal(limited.summary?.selected, 3);
  assert.equal(limited.summary?.written, 3);
  const recent = await replayTask(url, [...since, "--reason=not_json"]);
  assert.equal(recent.code, 1, recent.stderr);
  assert.equal(recent.summary?.selected, 1, "the poison record is recent");
  const rest = rejectedIds.length - old.length - 3;
  const fixed = await replayTask(url, [...since, "--reason=database_rejected"]);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(fixed.summary?.selected, rest);
  assert.equal(fixed.summary?.written, rest);
  assert.deepEqual(
    (await letters(sql)).filter((l) => l.replayed).map((l) => l.id),
    rejectedIds.slice(old.length),
  );
}

/** Everything left; then again: only the poison record is selected and nothing is written twice. */
async function theRest(
  url: string,
  sql: Sql,
  before: Letter[],
  records: ReplayedRecord[],
) {
  const rejected = before.length - 1;
  const old = Math.floor(rejected / 2);
  const poison = before.find((l) => l.reason === "not_json")!;
  const rest = await replayTask(url, []);
  assert.equal(rest.code, 1, rest.stderr);
  assert.equal(rest.summary?.selected, old + 1);
  assert.equal(rest.summary?.written, old);
  assert.equal(rest.summary?.duplicates, 0);
  assert.equal(rest.summary?.replayed, old);
  assert.deepEqual(rest.summary?.still_failing_by_reason, { not_json: 1 });
  assert.deepEqual(rest.summary?.still_failing_ids, [poison.id]);
  await assertMatchesSource(sql, records);

  const again = await replayTask(url, ["--reason", "database_rejected"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.summary?.selected, 0);
  const poisonOnly = await replayTask(url, []);
  assert.equal(poisonOnly.code, 1, poisonOnly.stderr);
  assert.equal(poisonOnly.summary?.selected, 1);
  assert.equal(poisonOnly.summary?.written, 0);
  const all = await replayTask(url, [
    "--include-replayed",
    "--reason",
    "database_rejected,not_json",
  ]);
  assert.equal(all.code, 1, all.stderr);
  assert.equal(all.summary?.selected, rejected + 1);
  assert.equal(all.summary?.written, 0);
  assert.equal(all.summary?.duplicates, rejected);
  await assertMatchesSource(sql, records);
}

Deno.test("dlq:replay while the consumer rewrites the same rows doubles nothing", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  const config = testConfig({ DATABASE_URL: db.url });
  const records = replayedRecords(552);
  const rejected = records.filter(isLogRow).length;
  await setUp(config, db.sql, records);
  await db.sql.unsafe(FIX);

  // A second group re-reads the whole topic (as after a reset) while the replay runs: both are
  // held on a lock until both wait on it, then race on the same rows.
  const log = captureLogger("error");
  const locker = await db.sql.reserve();
  await locker`begin`;
  await locker`lock table wiki_recent_changes in share mode`;
  const second = { ...config, KAFKA_GROUP_ID: `${config.KAFKA_GROUP_ID}-b` };
  const consumer = await startConsumer(second, {
    log,
    signal: new AbortController().signal,
    idleExitMs: 2000,
  });
  let replay;
  try {
    const replaying = runDlqReplay(config, {
      log,
      signal: new AbortController().signal,
      print: () => {},
      chunk: 3,
    });
    await eventually(async () => {
      const [w] = await db.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return w!.n >= 2;
    }, 60_000);
    await locker`commit`;
    locker.release();
    replay = await replaying;
    await consumer.done;
  } finally {
    await consumer.close();
  }
  await assertMatchesSource(db.sql, records);
  assert.equal(replay.selected, rejected + 1);
  assert.equal(replay.written! + replay.duplicates!, rejected);
  assert.equal(
    replay.written! + consumer.stats.written,
    rejected,
    "each rejected row was inserted once, by one of them",
  );
  const pending = await db.sql`select reason from dead_letters
    where replayed_at is null`;
  assert.deepEqual([...pending].map((r) => r.reason), ["not_json"]);
  const [n] = await db.sql`select count(*)::int as n from dead_letters`;
  assert.equal(n!.n, rejected + 1);
});

Deno.test("dlq:replay exits 2 on bad flags", async (t) => {
  for (
    const args of [
      ["--reason", "nonsense"],
      ["--reason", ""],
      ["--since", "yesterday"],
      ["--limit", "0"],
      ["--limit", "x"],
      ["--since", "2024-02-01T00:00:00Z", "--until", "2024-01-01T00:00:00Z"],
      ["--wikis", "a"],
    ]
  ) {
    await t.step(args.join(" "), async () => {
      assert.equal(await replayMain(args), 2);
    });
  }
});

Deno.test("dlq:replay leaves a dead letter whose row is below the retention horizon unmarked, and says so", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  await migrate(db.sql);
  await storeLetters(db.sql, replayedRecords(10));
  // Retention dropped the recorded rows' months: the merge refuses them.
  await db
    .sql`update wiki_history_state set retained_from = '2100-01-01T00:00:00Z'`;
  const run = await replayTask(db.url, []);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.summary!.replayed, 0);
  assert.equal(run.summary!.duplicates, 0);
  assert.deepEqual(run.summary!.still_failing_by_reason, {
    below_retention: 10,
  });
  const [stored] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(stored!.n, 0);
  const [marked] = await db
    .sql`select count(*)::int as n from dead_letters where replayed_at is not null`;
  assert.equal(marked!.n, 0, "no dead letter marked for a row not stored");
  // Once the horizon allows them (the months restored), the same letters are replayed.
  await db.sql`update wiki_history_state set retained_from = '-infinity'`;
  const again = await replayTask(db.url, []);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.summary!.replayed, 10);
  assert.equal(again.summary!.written, 10);
});

Deno.test("dlq:replay stopped between chunks prints what it committed", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  const config = testConfig({ DATABASE_URL: db.url });
  await migrate(db.sql);
  await storeLetters(db.sql, replayedRecords(200));
  // Every write takes the retention lock shared: held exclusively, the first chunk waits on it.
  const locker = await db.sql.reserve();
  await locker`select pg_advisory_lock(hashtext('wikistream.retention'))`;
  const stop = new AbortController();
  const printed: string[] = [];
  const replaying = runDlqReplay(config, {
    log: captureLogger("error"),
    signal: stop.signal,
    print: (l) => printed.push(l),
    chunk: 40,
  });
  try {
    await eventually(async () => {
      const [w] = await db.sql`select count(*)::int as n from pg_locks
        where locktype = 'advisory' and not granted`;
      return w!.n >= 1;
    }, 30_000);
    stop.abort(); // Ctrl-C while the first chunk's write is in flight
  } finally {
    await locker`select pg_advisory_unlock(hashtext('wikistream.retention'))`;
    locker.release();
  }
  await assert.rejects(replaying);
  assert.equal(printed.length, 1, "one summary line, also when stopped");
  const summary = JSON.parse(printed[0]!);
  assert.equal(summary.interrupted, true);
  assert.equal(summary.replayed, 40, "the write in flight was finished");
  const [m] = await db
    .sql`select count(*)::int as n from dead_letters where replayed_at is not null`;
  assert.equal(m!.n, summary.replayed, "the summary says what is marked");
});

Deno.test("dlq:replay pages by bytes as well as by count: large records never fill memory", async () => {
  await using db = await freshDatabase(testConfig().DATABASE_URL);
  await migrate(db.sql);
  // Three 12 MiB values and one of 40 MiB (bigger than a page on its own).
  for (const [i, mib] of [[0, 12], [1, 12], [2, 12], [3, 40]] as const) {
    await db.sql`insert into dead_letters
      (topic, partition, "offset", value, reason, error)
      values ('t.rc', 0, ${i}, convert_to(repeat('x', ${
      mib * 1024 * 1024
    }), 'UTF8'),
        'too_large', 'test')`;
  }
  const filter = { maxId: await lastDeadLetterId(db.sql) };
  const page = (afterId: string) =>
    selectDeadLetters(db.sql, filter, { afterId, limit: 500 });
  const first = await page("0");
  assert.deepEqual(first.map((l) => l.offset), ["0", "1"], "24 MiB, not 36");
  const second = await page(first.at(-1)!.id);
  assert.deepEqual(second.map((l) => l.offset), ["2"]);
  const third = await page(second.at(-1)!.id);
  assert.deepEqual(third.map((l) => l.offset), ["3"], "one letter at least");
  assert.equal(third[0]!.value!.length, 40 * 1024 * 1024);
  assert.equal((await page(third[0]!.id)).length, 0);
});
