/** The sink against real PostgreSQL: rows PostgreSQL rejects are isolated, never a stall. */
import assert from "node:assert/strict";
import {
  createSink,
  type DeadLetter,
  type SinkRow,
} from "../../lib/sink/sink.ts";
import { migrate } from "../../lib/sink/migrate.ts";
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
