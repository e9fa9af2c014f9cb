/**
 * Rows that decode are storable: fast-check-generated rows go through decodeValue() and
 * createSink() into a temp schema and come back equal, column by column.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeValue } from "../../lib/sink/decode.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { createSink, type SinkRow } from "../../lib/sink/sink.ts";
import { encode, envelope, validRow } from "../_arbitraries.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";

const SAMPLES = Number(Deno.env.get("PROPERTY_SINK_ROWS") ?? 600);

Deno.test("createSink() stores every decodable generated row and reads it back equal", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  const log = captureLogger("warn");
  await migrate(db.sql, { log });
  const sink = createSink(db.sql, { log });

  // Unique rcids so every sampled row is a distinct insert.
  const rows = fc.sample(validRow, { numRuns: SAMPLES, seed: 20240426 })
    .map((row, i) => ({ ...row, rcid: String(1_000_000 + i) }));
  const decoded: SinkRow[] = rows.map((row, i) => ({
    ...decodeValue(encode(envelope(row))),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
  for (let i = 0; i < decoded.length; i += 100) {
    const r = await sink.write(decoded.slice(i, i + 100));
    assert.equal(r.deadLettered.length, 0, "no generated row is rejected");
  }

  // event_time is compared as epoch seconds: postgres.js parses years below 100 as 19xx/20xx.
  const stored = await db
    .sql`select *, extract(epoch from event_time)::float8 as epoch
    from wiki_recent_changes order by rcid`;
  assert.equal(stored.length, decoded.length);
  const byRcid = new Map(stored.map((r) => [String(r.rcid), r]));
  for (const want of decoded) {
    const got = byRcid.get(want.rcid);
    assert.ok(got, `rcid ${want.rcid} stored`);
    assert.equal(got.epoch * 1000, Date.parse(want.event_time), "event_time");
    for (const [col, value] of Object.entries(want)) {
      if (col === "event_time") continue;
      const actual: unknown = got[col];
      const norm: unknown = actual instanceof Date
        ? actual.toISOString()
        : actual;
      assert.deepEqual(norm, value, `rcid ${want.rcid} column ${col}`);
    }
  }
  const [agg] = await db
    .sql`select sum(changes)::int as n from wiki_activity_minute`;
  assert.equal(agg!.n, decoded.length);
});

Deno.test("createSink() stores the boundary values the decoder accepts", async () => {
  // Before the int4 and year bounds in lib/schemas/wikimedia.ts, ns = 2^31, oldlen = 2^40 or year 0000
  // decoded, then failed inside COPY, where postgres.js never settles the write: the partition hung.
  const config = testConfig();
  await using db = await tempSchema(config);
  const log = captureLogger("error");
  await migrate(db.sql, { log });
  const sink = createSink(db.sql, { log });
  const base = { type: "edit", timestamp: "2024-04-26T12:00:00Z" };
  const srcs = [
    { ...base, rcid: 1, ns: 2 ** 31 - 1, oldlen: 2 ** 31 - 1, newlen: 0 },
    { ...base, rcid: 2, ns: -(2 ** 31) },
    { ...base, rcid: "9223372036854775807", revid: "9007199254740993" },
    { ...base, rcid: 4, timestamp: "0001-01-01T00:00:00Z" },
    { ...base, rcid: 5, timestamp: "9999-12-31T23:59:59Z" },
    { ...base, rcid: 6, timestamp: "2024-04-26T23:30:00-05:00" },
  ];
  const rows: SinkRow[] = srcs.map((s, i) => ({
    ...decodeValue(encode(envelope(s))),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
  const r = await sink.write(rows);
  assert.equal(r.inserted, srcs.length);
  const got = await db.sql`select rcid::text, namespace, old_len, rev_id::text,
      to_char(event_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as t
    from wiki_recent_changes order by rcid`;
  assert.deepEqual(
    got.map((g) => [g.rcid, g.namespace, g.old_len, g.rev_id, g.t]),
    [
      ["1", 2 ** 31 - 1, 2 ** 31 - 1, null, "2024-04-26T12:00:00"],
      ["2", -(2 ** 31), null, null, "2024-04-26T12:00:00"],
      ["4", null, null, null, "0001-01-01T00:00:00"],
      ["5", null, null, null, "9999-12-31T23:59:59"],
      ["6", null, null, null, "2024-04-27T04:30:00"],
      [
        "9223372036854775807",
        null,
        null,
        "9007199254740993",
        "2024-04-26T12:00:00",
      ],
    ],
  );
});
