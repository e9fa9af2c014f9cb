/**
 * The sink's direct COPY (new rows straight into the table) against the merge, on real
 * PostgreSQL: the same batches leave the same tables, and a batch the database refuses to take
 * directly (a row already there) is merged, losing and doubling nothing.
 */
import assert from "node:assert/strict";
import { createSink, type SinkRow } from "../../lib/sink/sink.ts";
import { copyIn } from "../../lib/sink/copy.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import { replayedRecords } from "./_consumer_fixture.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import { sinkTables } from "./_direct_copy_fixture.ts";

/** Recorded rows replayed (rcids and times shifted per replica), in three Kafka partitions. */
function rows(count: number): SinkRow[] {
  const enc = new TextEncoder();
  return replayedRecords(count).map((r, i) => ({
    ...decodeValue(enc.encode(r.value)),
    kafka_partition: i % 3,
    kafka_offset: String(i),
  }));
}

/** A seeded generator (mulberry32): the same plan on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Batches as a consumer meets them: mostly new rows, sometimes a redelivery that overlaps what
 * was written (a restart), sometimes a change twice in one batch (a redelivery inside a batch).
 */
function plan(pool: SinkRow[], seed: number): SinkRow[][] {
  const rnd = random(seed);
  const batches: SinkRow[][] = [];
  let next = 0;
  while (next < pool.length) {
    const size = 1 + Math.floor(rnd() * 120);
    const roll = rnd();
    const from = roll < 0.2 ? Math.max(0, next - Math.floor(rnd() * 60)) : next;
    const batch = pool.slice(from, from + size);
    if (roll > 0.9 && batch.length > 1) {
      batch.push(batch[Math.floor(rnd() * batch.length)]!);
    }
    batches.push(batch);
    next = Math.max(next, from + size);
  }
  return batches;
}

Deno.test("the direct COPY and the merge leave the same tables and results for the same batches", async () => {
  const config = testConfig();
  let direct = 0;
  await using a = await tempSchema(config, {
    onQuery: (q) => {
      if (q.startsWith("copy wiki_recent_changes")) direct++;
    },
  });
  await using b = await tempSchema(config);
  await migrate(a.sql);
  await migrate(b.sql);
  const log = captureLogger("warn");
  const fast = createSink(a.sql, { log });
  const merged = createSink(b.sql, { log, directCopy: false });
  const pool = rows(1500);
  const batches = [...plan(pool, 7), ...plan(pool.slice(0, 400), 11)];
  for (const batch of batches) {
    const [x, y] = [await fast.write(batch), await merged.write(batch)];
    assert.deepEqual(x, y);
  }
  assert.ok(direct > 5, `only ${direct} direct COPYs were tried`);
  const [ta, tb] = [await sinkTables(a.sql), await sinkTables(b.sql)];
  assert.equal(ta.rows!.length, 1500);
  assert.ok(ta.pages!.length > 0, "the recorded page deletions were applied");
  assert.deepEqual(ta, tb);
  const [recount] = await a.sql`
    select (select count(*) from wiki_recent_changes)::int as rows,
      (select sum(changes) from wiki_activity_minute)::int as minute,
      (select sum(changes) from wiki_activity_day)::int as day`;
  assert.deepEqual(recount, { rows: 1500, minute: 1500, day: 1500 });
});

Deno.test("a batch whose last row is already stored is merged after the direct COPY is refused", async () => {
  const config = testConfig();
  const copies: string[] = [];
  await using db = await tempSchema(config, {
    onQuery: (q) => {
      if (q.startsWith("copy ")) copies.push(q.split(" ")[1]!);
    },
  });
  await migrate(db.sql);
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  const pool = rows(300);
  assert.equal((await sink.write(pool.slice(0, 100))).inserted, 100);
  // The refusal comes with the COPY's last row, after the client has sent everything.
  const result = await sink.write([...pool.slice(100, 250), pool[99]!]);
  assert.equal(result.inserted, 150);
  assert.equal(result.duplicates, 1);
  assert.deepEqual(copies, [
    "wiki_recent_changes",
    "wiki_recent_changes",
    "pg_temp.wikistream_stage_text",
  ]);
  const [n] = await db.sql`
    select (select count(*) from wiki_recent_changes)::int as rows,
      (select sum(changes) from wiki_activity_minute)::int as minute,
      (select sum(changes) from wiki_activity_hour)::int as hour`;
  assert.deepEqual(n, { rows: 250, minute: 250, hour: 250 });
});

Deno.test("copyIn() rejects with the server's error, however late it refuses, and the session goes on", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await db.sql`create table t (id int primary key, v text)`;
  await db.sql`insert into t values (5, 'x')`;
  const lines = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `${from + i}\tv\n`);
  const attempt = (chunks: string[], statement = "copy t (id, v) from stdin") =>
    db.sql.begin((tx) => copyIn(tx, statement, chunks));
  for (
    const chunks of [
      lines(0, 10), // refused after the last chunk: the case postgres.js leaves hanging
      lines(0, 50_000), // refused while the client still sends
      [...lines(100_000, 30_000), "bad\tv\n"], // bad data at the very end
    ]
  ) {
    const big = chunks.length > 10 ? [chunks.join("")] : chunks;
    await assert.rejects(
      attempt(big),
      (err: { name?: string; code?: string }) => {
        assert.equal(err.name, "PostgresError");
        assert.match(err.code!, /^(23505|22P02)$/);
        return true;
      },
    );
  }
  await assert.rejects(
    attempt(["1\n"], "copy missing (id) from stdin"),
    { code: "42P01" },
  );
  await attempt(lines(1000, 3));
  const [n] = await db.sql`select count(*)::int as n from t`;
  assert.equal(n!.n, 4);
});
