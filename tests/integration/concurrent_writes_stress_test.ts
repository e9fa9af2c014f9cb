/**
 * Two writes in flight (groupWrites' two slots, as the consumer runs them) beside everything that
 * takes locks on the same tables: monthly partitions created on demand by either slot, retention
 * dropping partitions, rows PostgreSQL rejects (bisected and dead-lettered while the other slot
 * writes), page deletions and visibility changes. Every write must succeed at its first try (no
 * deadlock, no lock timeout) and leave exactly what one write at a time leaves.
 */
import assert from "node:assert/strict";
import { createSink, type SinkRow } from "../../lib/sink/sink.ts";
import { groupWrites } from "../../lib/sink/group_writes.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import { dropOlderThan, ensureMonth } from "../../lib/sink/partitions.ts";
import { replayedRecords } from "./_consumer_fixture.ts";
import { rowsOf } from "./_concurrent_fixture.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import { sinkTables } from "./_direct_copy_fixture.ts";

/** Months of empty partitions that retention drops, one by one, while the writes run. */
const OLD_MONTHS = 12;

/**
 * 1,600 replayed recorded rows in 4 partitions of batches of 50. CONSTRUCTED: batch i's rows
 * but log rows (whose page deletion's time must not depend on which replica's copy of a log id
 * comes first) are moved (i % 5) * 40 days later, so new months' partitions are created while the other slot
 * writes, and every 7th batch has one row whose new_len PostgreSQL rejects (out of integer range).
 */
function batches(): SinkRow[][][] {
  const rows = rowsOf(replayedRecords(1600), 0);
  const out: SinkRow[][][] = [[], [], [], []];
  for (let i = 0; i * 50 < rows.length; i++) {
    const p = i % 4;
    const shift = (i % 5) * 40 * 86_400_000;
    const batch = rows.slice(i * 50, (i + 1) * 50).map((r, j) => ({
      ...r,
      kafka_partition: p,
      log_id: logId(r.log_id, i * 50 + j),
      event_time: r.change_type === "log" ? r.event_time : new Date(
        Date.parse(r.event_time) + shift,
      ).toISOString().replace(/\.000Z$/, "Z"),
    }));
    if (i % 7 === 3) batch[25] = { ...batch[25]!, new_len: 2 ** 40 };
    out[p]!.push(batch);
  }
  return out;
}

/**
 * CONSTRUCTED: replica k's log ids shifted by k * 1e10, as its rcids are (a log id then names one
 * event at one time, as it does upstream; otherwise which replica's copy of a page deletion is
 * recorded first would depend on the order in which the partitions' writes commit).
 */
function logId(id: string | null | undefined, index: number): string | null {
  if (id === null || id === undefined) return null;
  return (BigInt(id) + BigInt(Math.floor(index / 184)) * 10_000_000_000n)
    .toString();
}

async function drive(
  url: string,
  schema: string,
  inFlight: number,
  input: SinkRow[][][],
) {
  const log = captureLogger("debug");
  const sink = groupWrites(
    createSink(
      (session) => connectDb(url, { schema, max: 3, ...session }),
      { log },
    ),
    inFlight,
  );
  const admin = connectDb(url, { schema, max: 1 });
  const failures: string[] = [];
  let writing = true;
  /** Partitions retention dropped while writes were still running. */
  let dropped = 0;
  try {
    for (let m = 0; m < OLD_MONTHS; m++) {
      await ensureMonth(admin, new Date(Date.UTC(1990, m, 1)));
    }
    // Retention beside the writes: one old month at a time, each in a transaction of its own.
    const retention = (async () => {
      for (let m = 1; m <= OLD_MONTHS && writing; m++) {
        const d = await dropOlderThan(admin, new Date(Date.UTC(1990, m, 1)));
        if (writing) dropped += d.length;
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    await Promise.all(input.map(async (list) => {
      for (const b of list) {
        for (;;) {
          try {
            await sink.write(b);
            break;
          } catch (err) {
            const e = err as { code?: string; message?: string };
            failures.push(`${e.code} ${e.message}`);
          }
        }
      }
    }));
    writing = false;
    await retention;
  } finally {
    await admin.end();
    await sink.close();
  }
  const replaced = log.lines.filter((l) => l.msg === "database pool replaced");
  return { failures, replaced: replaced.length, dropped };
}

async function deadLetters(sql: Sql) {
  return await sql`select topic, partition, "offset"::text, reason
    from dead_letters order by partition, "offset"`;
}

Deno.test("two writes in flight beside partition creation, retention and bad rows: no write fails, and the tables are what one at a time leaves", async () => {
  const config = testConfig();
  await using one = await tempSchema(config);
  await using two = await tempSchema(config);
  await migrate(one.sql);
  await migrate(two.sql);
  const input = batches();
  const a = await drive(config.DATABASE_URL, one.name, 1, input);
  const b = await drive(config.DATABASE_URL, two.name, 2, input);
  assert.deepEqual(a, { failures: [], replaced: 0, dropped: OLD_MONTHS });
  assert.deepEqual(
    b,
    { failures: [], replaced: 0, dropped: OLD_MONTHS },
    "no write failed; retention dropped every old month beside the writes",
  );
  const [ta, tb] = [await sinkTables(one.sql), await sinkTables(two.sql)];
  assert.ok(ta.rows!.length > 1550);
  assert.deepEqual(tb, ta);
  const [da, db] = [await deadLetters(one.sql), await deadLetters(two.sql)];
  assert.ok(da.length > 0, "rows were dead-lettered");
  assert.deepEqual(db, da);
});
