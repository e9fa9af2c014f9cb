/** The sink's own pool under faults that are not about a row: long locks, a failing DLQ topic. */
import assert from "node:assert/strict";
import { createSink, type DeadLetter } from "../../lib/sink/sink.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { decodeBatch } from "../../lib/sink/batch_handler.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import { replayedRecords } from "./_consumer_fixture.ts";

function sinkRows(n: number) {
  const enc = new TextEncoder();
  return decodeBatch({
    topic: "t",
    partition: 0,
    highWatermark: String(n),
    records: replayedRecords(n).map((r, i) => ({
      topic: "t",
      partition: 0,
      offset: String(i),
      key: enc.encode(r.key),
      value: enc.encode(r.value),
      headers: { wiki: r.wiki },
      timestamp: "1700000000000",
    })),
  }).rows;
}

Deno.test("createSink() leaks no backend while a lock outlasts many write timeouts", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const log = captureLogger("warn");
  const sink = createSink(
    (session) =>
      connectDb(config.DATABASE_URL, { schema: db.name, max: 3, ...session }),
    { log, writeTimeoutMs: 1000 },
  );
  const locker = connectDb(config.DATABASE_URL, { schema: db.name, max: 1 });
  const watcher = connectDb(config.DATABASE_URL, { max: 1 });
  try {
    const rows = sinkRows(50);
    const locked = Promise.withResolvers<number>();
    const held = locker.begin(async (tx) => {
      await tx`lock table wiki_recent_changes in access exclusive mode`;
      const [me] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
      locked.resolve(me!.pid);
      await tx`select pg_sleep(8)`;
    });
    const lockerPid = await locked.promise;
    let most = 0;
    let released = false;
    held.finally(() => released = true);
    const watching = (async () => {
      while (!released) {
        const [r] = await watcher<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and pid <> ${lockerPid}`;
        most = Math.max(most, r!.n);
        await new Promise((res) => setTimeout(res, 250));
      }
    })();
    // What the batch handler does: retry until the write succeeds.
    let failures = 0;
    for (;;) {
      try {
        const res = await sink.write(rows);
        assert.equal(res.inserted, 50);
        break;
      } catch {
        failures++;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    await held;
    await watching;
    assert.ok(failures >= 3, `the lock outlasted several writes (${failures})`);
    assert.ok(most <= 2, `at most 2 backends waited on the lock, saw ${most}`);
    const [n] = await db
      .sql`select count(*)::int as n from wiki_recent_changes`;
    assert.equal(n!.n, 50);
  } finally {
    await sink.close();
    await locker.end();
    await watcher.end();
  }
});

Deno.test("createSink() keeps its PostgreSQL pool when the dead-letter topic fails", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const log = captureLogger("warn");
  let fail = 1;
  const sink = createSink(
    (session) =>
      connectDb(config.DATABASE_URL, { schema: db.name, max: 3, ...session }),
    {
      log,
      deadLetters: {
        publish() {
          if (fail-- > 0) {
            return Promise.reject(
              Object.assign(new Error("broker unreachable"), {
                name: "KafkaJSConnectionError",
              }),
            );
          }
          return Promise.resolve();
        },
      },
    },
  );
  try {
    const dl: DeadLetter = {
      topic: "t",
      partition: 0,
      offset: "1",
      key: null,
      value: new Uint8Array([1]),
      headers: {},
      reason: "not_json",
      error: "bad",
    };
    await assert.rejects(sink.write([], [dl]), /broker unreachable/);
    await sink.write([], [dl]);
    assert.deepEqual(
      log.lines.filter((l) => String(l.msg).includes("pool replaced")),
      [],
      "a Kafka failure does not replace the PostgreSQL pool",
    );
    const [n] = await db.sql`select count(*)::int as n from dead_letters`;
    assert.equal(n!.n, 1);
  } finally {
    await sink.close();
  }
});

Deno.test("createSink() dead-letters a row PostgreSQL rejects as its original Kafka record", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const published: DeadLetter[] = [];
  const sink = createSink(db.sql, {
    log: captureLogger("error"),
    deadLetters: { publish: (d) => Promise.resolve(void published.push(...d)) },
  });
  const rows = sinkRows(5);
  const original = rows[2]!.source!;
  // A value the decoder would refuse, forced in to reach the database's own checks.
  rows[2] = { ...rows[2]!, namespace: 2 ** 40 };
  const result = await sink.write(rows);
  assert.equal(result.inserted, 4);
  const [dl] = await db
    .sql`select topic, partition, "offset", key, value, headers, reason
    from dead_letters`;
  assert.equal(dl!.topic, "t");
  assert.equal(dl!.offset, "2");
  assert.deepEqual(new Uint8Array(dl!.key), original.key);
  assert.deepEqual(new Uint8Array(dl!.value), original.value);
  assert.equal(dl!.headers.wiki, original.headers.wiki);
  assert.equal(dl!.headers["dlq.reason"], "database_rejected");
  assert.equal(dl!.headers["dlq.source_offset"], "2");
  assert.deepEqual(published.map((d) => d.value), [original.value]);
});
