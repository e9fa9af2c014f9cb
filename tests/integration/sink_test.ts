/** The sink against real PostgreSQL: rows PostgreSQL rejects are isolated, never a stall. */
import assert from "node:assert/strict";
import {
  createSink,
  type DeadLetter,
  type SinkRow,
} from "../../lib/sink/sink.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { groupWrites } from "../../lib/sink/group_writes.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import { loadRecordedWikis } from "../fakes/fake_mediawiki.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";

function recordedRows(): SinkRow[] {
  const w = loadRecordedWikis().find((x) => x.host === "lv.wikipedia.org")!;
  return w.rows.map((row, i) => ({
    ...decodeValue(new TextEncoder().encode(JSON.stringify({
      v: 1,
      source: "action_api",
      wiki: w.wikiid,
      server_name: w.servername,
      fetched_at: "2020-04-12T15:00:00Z",
      row,
    }))),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
}

Deno.test("createSink() dead-letters a row PostgreSQL rejects and writes the rest", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const log = captureLogger("warn");
  const sink = createSink(db.sql, { log });
  const rows = recordedRows();
  // A value the decoder would refuse, forced in to reach the database's own checks.
  rows[37] = { ...rows[37]!, namespace: 2 ** 40 };
  const result = await sink.write(rows);
  assert.equal(result.inserted, 99);
  assert.equal(result.deadLettered.length, 1);
  assert.equal(result.deadLettered[0]!.reason, "database_rejected");
  const [n] = await db.sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(n!.n, 99);
  const [dl] = await db.sql`select reason, error from dead_letters`;
  assert.equal(dl!.reason, "database_rejected");
  assert.match(dl!.error, /^22003/);
  const [agg] = await db
    .sql`select sum(changes)::int as n from wiki_activity_minute`;
  assert.equal(agg!.n, 99);
});

Deno.test("createSink() stores a dead letter whose headers hold NUL and lone surrogates", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const sink = createSink(db.sql, { log: captureLogger("warn") });
  const dl: DeadLetter = {
    topic: "t",
    partition: 0,
    offset: "5",
    key: null,
    value: new Uint8Array([0, 255]),
    headers: { "x\u0000": "a\u0000b\ud800" },
    reason: "not_json",
    error: "Unexpected token \u0000",
  };
  await sink.write([], [dl]);
  await sink.write([], [dl]); // a replay stores it once
  const rows = await db.sql`select headers, error, value from dead_letters`;
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0]!.headers, { "x\\u0000": "a\\u0000b\ufffd" });
  assert.deepEqual([...rows[0]!.value], [0, 255]);
});

Deno.test("groupWrites() writes concurrent partitions' batches together, each caller getting its own share", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const log = captureLogger("warn");
  let writes = 0;
  const inner = createSink(db.sql, { log });
  const sink = groupWrites({
    write: (r, d) => (writes++, inner.write(r, d)),
    close: () => inner.close(),
  }, 1);
  const rows = recordedRows();
  const part = (p: number, from: number, to: number) =>
    rows.slice(from, to).map((r) => ({ ...r, kafka_partition: p }));
  const a = part(0, 0, 40);
  const b = part(1, 40, 70);
  const c = part(2, 70, 100);
  b[5] = { ...b[5]!, namespace: 2 ** 40 }; // rejected by the database: partition 1's dead letter
  // One slot: the first write starts alone; the next two arrive while it is in flight and share one.
  const [ra, rb, rc] = await Promise.all([
    sink.write(a),
    sink.write(b),
    sink.write(c),
  ]);
  assert.equal(writes, 2, "two transactions for three callers");
  assert.deepEqual([ra.inserted, ra.duplicates, ra.deadLettered.length], [
    40,
    0,
    0,
  ]);
  assert.deepEqual([rb.inserted, rb.duplicates, rb.deadLettered.length], [
    29,
    0,
    1,
  ]);
  assert.equal(rb.deadLettered[0]!.partition, 1);
  assert.deepEqual([rc.inserted, rc.duplicates, rc.deadLettered.length], [
    30,
    0,
    0,
  ]);
  // Redelivered together: all duplicates, counted per caller, nothing written twice.
  const [rb2, rc2] = await Promise.all([sink.write(b), sink.write(c)]);
  assert.deepEqual([rb2.inserted, rb2.duplicates], [0, 29]);
  assert.deepEqual([rc2.inserted, rc2.duplicates], [0, 30]);
  const [n] = await db.sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(n!.n, 99);
  const [agg] = await db
    .sql`select sum(changes)::int as n from wiki_activity_minute`;
  assert.equal(agg!.n, 99);
});

Deno.test("a row past an index limit (54000) is dead-lettered alone; the partitions grouped with it are written", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const sink = groupWrites(createSink(db.sql, { log: captureLogger("warn") }));
  const rows = recordedRows();
  const a = rows.slice(0, 50).map((r) => ({ ...r, kafka_partition: 0 }));
  const b = rows.slice(50, 100).map((r) => ({ ...r, kafka_partition: 1 }));
  // A title too big for the page-title index (a btree entry is at most ~8 KB).
  // Random letters: PostgreSQL compresses a long index entry first, so it must not compress.
  const title = Array.from(
    crypto.getRandomValues(new Uint8Array(9000)),
    (b) => String.fromCharCode(65 + (b % 58)),
  ).join("");
  a[3] = { ...a[3]!, title };
  const first = sink.write(rows.slice(0, 0));
  const [ra, rb] = await Promise.all([sink.write(a), sink.write(b), first]);
  assert.deepEqual([ra.inserted, ra.deadLettered.length], [49, 1]);
  assert.match(ra.deadLettered[0]!.error, /^54000/);
  assert.deepEqual([rb.inserted, rb.deadLettered.length], [50, 0]);
  const [n] = await db.sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(n!.n, 99);
});
