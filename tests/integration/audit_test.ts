/** `deno task audit`: finds rows deleted from the table and, with --repair, brings them back through Kafka. */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { type AuditReport, runAudit } from "../../lib/pipeline/audit.ts";
import { main as auditMain } from "../../audit.ts";
import {
  loadRecordedWikis,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";

const SINCE = "2013-01-01T00:00:00Z";
const UNTIL = "2021-01-01T00:00:00Z";

async function consumeAll(
  config: ReturnType<typeof testConfig>,
  schema: string,
) {
  const consumer = await startConsumer(config, {
    log: captureLogger("warn"),
    signal: new AbortController().signal,
    idleExitMs: 1500,
    schema,
  });
  await consumer.done;
  await consumer.close();
}

Deno.test("audit finds the rows deleted from the table, and --repair republishes exactly those", async () => {
  const wikis = loadRecordedWikis();
  await using fake = startFakeMediaWiki({ wikis, pageSize: 20 });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wikis.map((w) => w.host).join(","),
  });
  await using db = await tempSchema(config);
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: new AbortController().signal,
    since: SINCE,
    until: UNTIL,
  });
  await producer.done;
  await producer.close();
  await consumeAll(config, db.name);

  const deleted = await db.sql`delete from wiki_recent_changes
    where (wiki, rcid) in (
      select wiki, rcid from wiki_recent_changes
      where wiki in ('lvwiki', 'enwiki') order by wiki, rcid limit 7)
    returning wiki, rcid::text as rcid`;
  assert.equal(deleted.length, 7);
  const audit = async (repair: boolean) => {
    const lines: string[] = [];
    const reports = await runAudit(config, {
      since: SINCE,
      until: UNTIL,
      repair,
      log: captureLogger("warn"),
      signal: new AbortController().signal,
      print: (l) => lines.push(l),
      schema: db.name,
    });
    assert.deepEqual(lines.map((l) => JSON.parse(l)), reports);
    return new Map(reports.map((r) => [r.wiki, r]));
  };

  const found = await audit(true);
  for (const w of wikis) {
    const r = found.get(w.wikiid)!;
    const gone = deleted.filter((d) => d.wiki === w.wikiid).map((d) => d.rcid);
    assert.equal(r.source_rows, w.rows.length, w.wikiid);
    assert.equal(r.table_rows, w.rows.length - gone.length, w.wikiid);
    assert.equal(r.missing, gone.length, w.wikiid);
    assert.deepEqual([...r.missing_rcids].sort(), [...gone].sort());
    assert.equal(r.extra, 0);
    assert.equal(r.repaired ?? 0, gone.length);
  }

  await consumeAll(config, db.name);
  const after = await audit(false);
  assert.deepEqual(
    [...after.values()].map((
      r: AuditReport,
    ) => [r.wiki, r.missing, r.table_rows]),
    wikis.map((w) => [w.wikiid, 0, w.rows.length]),
  );
  const [count] = await db
    .sql`select count(*)::int as n from wiki_recent_changes`;
  assert.equal(count!.n, wikis.reduce((n, w) => n + w.rows.length, 0));
});

Deno.test("audit exits 2 without --since/--until and on a bad --wikis", async () => {
  assert.equal(await auditMain(["--until", UNTIL]), 2);
  assert.equal(
    await auditMain(["--since", SINCE, "--until", UNTIL, "--wikis", "a b"]),
    2,
  );
});
