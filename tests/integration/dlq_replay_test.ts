/** `deno task dlq:replay`: dead letters back through the sink after a fix, on real Kafka and PostgreSQL. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { runDlqReplay } from "../../lib/pipeline/dlq_replay.ts";
import { main as replayMain } from "../../dlq_replay.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import type { Config } from "../../lib/core/config.ts";
import type { Sql } from "../../lib/sink/db.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { taskArgs } from "../_task.ts";
import {
  assertMatchesSource,
  freshDatabase,
  publishRecords,
  type ReplayedRecord,
  replayedRecords,
} from "./_consumer_fixture.ts";

/** A bad deploy: a constraint that the recorded log rows violate (23514, a row error). */
const NO_LOG_ROWS =
  "alter table wiki_recent_changes add constraint ws_test_no_log check (change_type <> 'log')";
const FIX = "alter table wiki_recent_changes drop constraint ws_test_no_log";

/** The summary line `dlq:replay` prints. */
interface Summary {
  dry_run: boolean;
  selected: number;
  selected_by_reason: Record<string, number>;
  written?: number;
  duplicates?: number;
  replayed?: number;
  still_failing?: number;
  still_failing_by_reason?: Record<string, number>;
  still_failing_ids?: string[];
}

function isLogRow(r: ReplayedRecord): boolean {
  return (JSON.parse(r.value) as Envelope).row.type === "log";
}

/** Runs `deno task dlq:replay <args>` as the task runs it (scoped permissions); exit code and summary. */
async function replayTask(
  url: string,
  args: string[],
): Promise<{ code: number; summary?: Summary; stderr: string }> {
  const env = { DATABASE_URL: url, LOG_LEVEL: "warn", LOG_FORMAT: "json" };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs("dlq:replay", env)), ...args],
    cwd: new URL("../../", import.meta.url),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n")
    .filter(Boolean);
  return {
    code: out.code,
    summary: lines.length > 0 ? JSON.parse(lines.at(-1)!) : undefined,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Consumes the topic into the database until caught up and idle. */
async function consumeAll(config: Config): Promise<void> {
  const consumer = await startConsumer(config, {
    log: captureLogger("error"),
    signal: new AbortController().signal,
    idleExitMs: 1500,
  });
  try {
    await consumer.done;
  } finally {
    await consumer.close();
  }
}

/** Records in the DLQ topic so far (sum of its partitions' end offsets). */
async function dlqEnd(kafka: Kafka, topic: string): Promise<bigint> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topicNames(topic).dlq);
    return offsets.reduce((n, p) => n + BigInt(p.high), 0n);
  } finally {
    await admin.disconnect();
  }
}

async function letters(sql: Sql) {
  return await sql<
    { id: string; reason: string; replayed: boolean; offset: string }[]
  >`select id::text as id, reason, replayed_at is not null as replayed,
      "offset"::text as offset from dead_letters order by id`;
}

/** The recorded rows with their log rows rejected by the database, plus one poison record. */
async function setUp(config: Config, sql: Sql, records: ReplayedRecord[]) {
  await migrate(sql);
  await sql.unsafe(NO_LOG_ROWS);
  const log = captureLogger("error");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const half = Math.floor(records.length / 2);
  await publishRecords(kafka, config.KAFKA_TOPIC, records.slice(0, half), {
    log,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic: config.KAFKA_TOPIC,
      messages: [{
        key: "poison",
        value: Buffer.from("{not json"),
        headers: { origin: "test" },
      }],
    });
  } finally {
    await producer.disconnect();
  }
  await publishRecords(kafka, config.KAFKA_TOPIC, records.slice(half), { log });
  await consumeAll(config);
  return kafka;
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
  const byReason = (rows: { reason: string }[]) =>
    rows.reduce<Record<string, number>>((m, r) => {
      m[r.reason] = (m[r.reason] ?? 0) + 1;
      return m;
    }, {});
  assert.deepEqual(byReason(before), {
    database_rejected: rejected,
    not_json: 1,
  });
  assert.ok(before.every((l) => !l.replayed));
  const [kept] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(kept!.n, records.length - rejected);
  const poison = before.find((l) => l.reason === "not_json")!;
  const dlqBefore = await dlqEnd(kafka, config.KAFKA_TOPIC);
  assert.equal(dlqBefore, BigInt(rejected + 1));

  // A dry run counts by reason and writes nothing.
  const dry = await replayTask(db.url, ["--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.summary?.dry_run, true);
  assert.equal(dry.summary?.selected, rejected + 1);
  assert.deepEqual(dry.summary?.selected_by_reason, {
    database_rejected: rejected,
    not_json: 1,
  });

  // Before the fix: still rejected, nothing marked, no second dead letter.
  const early = await replayTask(db.url, ["--reason", "database_rejected"]);
  assert.equal(early.code, 1, early.stderr);
  assert.equal(early.summary?.written, 0);
  assert.deepEqual(early.summary?.still_failing_by_reason, {
    database_rejected: rejected,
  });
  assert.deepEqual(await letters(db.sql), before);

  await db.sql.unsafe(FIX);

  // --since and --until select by received_at: half of the letters are made old.
  const rejectedIds = before.filter((l) => l.reason === "database_rejected")
    .map((l) => l.id);
  const old = rejectedIds.slice(0, Math.floor(rejected / 2));
  await db.sql`update dead_letters set received_at = '2020-01-01T00:00:00Z'
    where id = any(${old}::bigint[])`;
  const until = await replayTask(db.url, [
    "--until",
    "2021-01-01T00:00:00Z",
    "--dry-run",
  ]);
  assert.equal(until.code, 0, until.stderr);
  assert.deepEqual(until.summary?.selected_by_reason, {
    database_rejected: old.length,
  });
  const limited = await replayTask(db.url, [
    "--reason",
    "database_rejected",
    "--since",
    "2024-01-01T00:00:00Z",
    "--limit",
    "3",
  ]);
  assert.equal(limited.code, 0, limited.stderr);
  assert.equal(limited.summary?.selected, 3);
  assert.equal(limited.summary?.written, 3);
  const recent = await replayTask(db.url, [
    "--reason=database_rejected",
    "--since=2024-01-01T00:00:00Z",
  ]);
  assert.equal(recent.code, 0, recent.stderr);
  assert.equal(recent.summary?.selected, rejected - old.length - 3);
  assert.equal(recent.summary?.written, rejected - old.length - 3);
  assert.deepEqual(
    (await letters(db.sql)).filter((l) => l.replayed).map((l) => l.id),
    rejectedIds.slice(old.length),
  );

  // Everything left: the old half is written, the poison record still fails and is reported.
  const rest = await replayTask(db.url, []);
  assert.equal(rest.code, 1, rest.stderr);
  assert.equal(rest.summary?.selected, old.length + 1);
  assert.equal(rest.summary?.written, old.length);
  assert.equal(rest.summary?.duplicates, 0);
  assert.equal(rest.summary?.replayed, old.length);
  assert.deepEqual(rest.summary?.still_failing_by_reason, { not_json: 1 });
  assert.deepEqual(rest.summary?.still_failing_ids, [poison.id]);
  await assertMatchesSource(db.sql, records);

  // Again: nothing left to replay but the poison record; nothing is written twice.
  const again = await replayTask(db.url, ["--reason", "database_rejected"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.summary?.selected, 0);
  const poisonOnly = await replayTask(db.url, []);
  assert.equal(poisonOnly.code, 1, poisonOnly.stderr);
  assert.equal(poisonOnly.summary?.selected, 1);
  assert.equal(poisonOnly.summary?.written, 0);
  const all = await replayTask(db.url, [
    "--include-replayed",
    "--reason",
    "database_rejected,not_json",
  ]);
  assert.equal(all.code, 1, all.stderr);
  assert.equal(all.summary?.selected, rejected + 1);
  assert.equal(all.summary?.written, 0);
  assert.equal(all.summary?.duplicates, rejected);
  await assertMatchesSource(db.sql, records);

  const after = await letters(db.sql);
  assert.equal(after.length, before.length, "no new dead letter");
  assert.deepEqual(
    after.filter((l) => !l.replayed).map((l) => l.id),
    [poison.id],
  );
  assert.equal(
    await dlqEnd(kafka, config.KAFKA_TOPIC),
    dlqBefore,
    "nothing published to the DLQ topic",
  );
});

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
