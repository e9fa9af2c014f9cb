/** SOURCE=eventstreams end to end: recorded SSE events, cut mid-event, reconnecting, into PostgreSQL. */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { readToEnd } from "../../lib/kafka/compacted.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import {
  recordedStreamLines,
  startFakeEventStreams,
} from "../fakes/fake_eventstreams.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";

async function publishedMetaIds(config: ReturnType<typeof testConfig>) {
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "t",
    log: captureLogger("error"),
  });
  const counts = new Map<string, number>();
  await readToEnd(kafka, topicNames(config.KAFKA_TOPIC).events, (r) => {
    const id = JSON.parse(new TextDecoder().decode(r.value!)).row.meta.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }, { clientId: "t", log: captureLogger("error") });
  return counts;
}

Deno.test("eventstreams source publishes every recorded event once across cut connections and restarts", async () => {
  const lines = recordedStreamLines();
  await using fake = startFakeEventStreams({ lines, cuts: [700, 1, 1500] });
  const config = testConfig({
    SOURCE: "eventstreams",
    EVENTSTREAMS_URL: fake.url,
    WIKIS: "*",
  });
  const log = captureLogger("info");

  // First run: stop it (SIGTERM-like) part-way; the second run resumes with Last-Event-ID.
  const c1 = new AbortController();
  const p1 = await startProducer(config, {
    log,
    signal: c1.signal,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  });
  await eventually(
    () => p1.stats.get("eventstreams")!.published >= 1000,
    60_000,
    50,
  );
  c1.abort();
  await p1.close();

  const c2 = new AbortController();
  const p2 = await startProducer(config, {
    log,
    signal: c2.signal,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  });
  try {
    await eventually(
      async () => (await publishedMetaIds(config)).size === lines.length,
      60_000,
      500,
    );
  } finally {
    c2.abort();
    await p2.close();
  }
  const counts = await publishedMetaIds(config);
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(repeated, []);
  assert.equal(counts.size, 3818);
  assert.ok(
    fake.connections.length >= 4,
    "reconnected after each cut and after the restart",
  );
  assert.ok(
    fake.connections.slice(1).every((id) =>
      id.startsWith('[{"topic":"eqiad.mediawiki.recentchange"')
    ),
    "resumed with Last-Event-ID",
  );
  assert.ok(log.lines.some((l) => l.msg === "event stream reconnecting"));

  // Into PostgreSQL: all 3,818 events, the 22 id-less log events included.
  await using db = await tempSchema(config);
  const consumer = await startConsumer(config, {
    log: captureLogger("warn"),
    signal: new AbortController().signal,
    idleExitMs: 1500,
    schema: db.name,
  });
  await consumer.done;
  await consumer.close();
  const [n] = await db
    .sql`select count(*)::int as n, count(*) filter (where rcid < 0)::int as synthetic,
    count(*) filter (where change_type = 'log')::int as logs from wiki_recent_changes`;
  assert.deepEqual(n, { n: 3818, synthetic: 22, logs: 22 });
  const [patrol] = await db
    .sql`select log_type, log_action, log_params, event_time from wiki_recent_changes
    where raw->'meta'->>'id' = 'e8c9812b-2222-11e8-91d2-141877614a81'`;
  assert.deepEqual(patrol, {
    log_type: "patrol",
    log_action: "patrol",
    log_params: { auto: 0, previd: "644927705", curid: "644927776" },
    event_time: new Date("2018-03-07T16:16:36Z"),
  });
});
