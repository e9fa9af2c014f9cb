/** End to end: fake MediaWiki (recorded rows) -> producer -> Kafka -> consumer -> PostgreSQL. */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import {
  loadRecordedWikis,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import { assertAggregatesMatch } from "./_consumer_fixture.ts";
import { createDashboardData } from "../../lib/http/dashboard_data.ts";

const SINCE = "2013-01-01T00:00:00Z";
const UNTIL = "2021-01-01T00:00:00Z";

async function produceAll(config: ReturnType<typeof testConfig>) {
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: SINCE,
    until: UNTIL,
  });
  await producer.done;
  await producer.close();
  return producer.stats;
}

async function consumeAll(
  config: ReturnType<typeof testConfig>,
  schema: string,
) {
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    idleExitMs: 1500,
    schema,
  });
  await consumer.done;
  const stats = { ...consumer.stats };
  await consumer.close();
  return stats;
}

Deno.test("pipeline moves every recorded row into PostgreSQL exactly once", async () => {
  const wikis = loadRecordedWikis();
  await using fake = startFakeMediaWiki({ wikis, pageSize: 7 });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wikis.map((w) => w.host).join(","),
  });
  await using db = await tempSchema(config);

  const produced = await produceAll(config);
  const total = wikis.reduce((n, w) => n + w.rows.length, 0);
  assert.equal(
    [...produced.values()].reduce((n, s) => n + s.published, 0),
    total,
  );

  const first = await consumeAll(config, db.name);
  assert.equal(first.written, total);
  assert.equal(first.deadLettered, 0);

  // Every row equals the normaliser's output for the recorded source row.
  const rows = await db
    .sql`select * from wiki_recent_changes order by wiki, rcid`;
  assert.equal(rows.length, total);
  const expected = wikis.flatMap((w) =>
    w.rows.map((row) => {
      const env: Envelope = {
        v: 1,
        source: "action_api",
        wiki: w.wikiid,
        server_name: w.servername,
        fetched_at: new Date().toISOString(),
        row,
      };
      return decodeValue(new TextEncoder().encode(JSON.stringify(env)));
    })
  ).sort((a, b) =>
    a.wiki.localeCompare(b.wiki) || (BigInt(a.rcid) < BigInt(b.rcid) ? -1 : 1)
  );
  for (const [i, want] of expected.entries()) {
    const got = rows[i]!;
    for (const [col, value] of Object.entries(want)) {
      const actual = got[col];
      const norm = actual instanceof Date ? actual.toISOString() : actual;
      assert.deepEqual(norm, value, `${want.wiki}:${want.rcid} column ${col}`);
    }
  }

  // Spot-check concrete recorded values.
  const [newPage] = await db
    .sql`select * from wiki_recent_changes where wiki = 'lvwiki' and change_type = 'new' order by rcid limit 1`;
  assert.equal(newPage!.old_rev_id, null);
  assert.equal(newPage!.old_len, null);
  const [rename] = await db
    .sql`select log_type, log_action, log_params, user_id from wiki_recent_changes where wiki = 'enwiki' and log_type = 'renameuser'`;
  assert.deepEqual(rename!.log_params, {
    olduser: "Tuhin Karmakar",
    newuser: "Anonymous23648762289",
    edits: 19,
  });
  assert.equal(rename!.user_id, "13732");

  // Aggregates equal a recount from the table.
  const [agg] = await db
    .sql`select sum(changes)::int as n, sum(new_pages)::int as np from wiki_activity_minute`;
  const [count] = await db
    .sql`select count(*)::int as n, count(*) filter (where change_type = 'new')::int as np from wiki_recent_changes`;
  assert.deepEqual(agg, count);
  // Stored in monthly partitions (none left in the default), the rollups equal recounts too.
  const [kind] = await db.sql`select relkind::text as k from pg_class
    where oid = 'wiki_recent_changes'::regclass`;
  assert.equal(kind!.k, "p");
  const [stray] = await db
    .sql`select count(*)::int as n from wiki_recent_changes_default`;
  assert.equal(stray!.n, 0);
  await assertAggregatesMatch(db.sql);

  // The dashboard shows the recorded data whole by default (a replay: window "all"); 1 h shows less.
  const dashboard = createDashboardData(db.sql);
  const whole = await dashboard.snapshot();
  assert.deepEqual(
    { mode: whole.mode, key: whole.window.key, changes: whole.totals.changes },
    { mode: "replay", key: "all", changes: total },
  );
  const sums = whole.per_minute.reduce((n, p) => n + p.changes, 0);
  assert.equal(sums, total, "the chart holds every row");
  const hour = await dashboard.snapshot({ window: "1h" });
  assert.equal(hour.window.key, "1h");
  assert.ok(hour.totals.changes < total, `1 h: ${hour.totals.changes}`);

  // A second run of the same data adds nothing: the producer resumes from its checkpoint and the
  // sink ignores replays.
  const again = await produceAll(config);
  assert.equal([...again.values()].reduce((n, s) => n + s.published, 0), 0);
  const second = await consumeAll(config, db.name);
  assert.equal(second.written, 0);
  const [after] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(after!.n, total);
});
