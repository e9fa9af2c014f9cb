/**
 * The producer's loss paths on real Kafka, against the fake MediaWiki replaying the recorded 2018
 * Wikidata capture (3,818 rows over 313 s): rows that show up late, a row stamped in the wiki's
 * future, a backfill next to the live producer, and a start older than the wiki keeps.
 */
import assert from "node:assert/strict";
import { startProducer, topicNames } from "../../lib/pipeline/producer.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { readCompacted } from "../../lib/kafka/compacted.ts";
import { renderMetrics } from "../../lib/http/metrics.ts";
import { publishedRcids } from "../_kafka.ts";
import {
  loadStreamAsApiWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";

const wiki = loadStreamAsApiWiki();
const tsOf = (r: Record<string, unknown>) => Date.parse(String(r.timestamp));
const byTime = [...wiki.rows].sort((a, b) => tsOf(a) - tsOf(b));
const FIRST = tsOf(byTime[0]!);
const LAST = tsOf(byTime.at(-1)!);
const iso = (ms: number) => new Date(ms).toISOString();
const ALL = wiki.rows.map((r) => String(r.rcid));

/** A fake wiki whose clock the test moves. */
function fakeWiki(clockMs: { value: number }) {
  return startFakeMediaWiki({
    wikis: [wiki],
    pageSize: 500,
    clock: () => clockMs.value,
  });
}

async function checkpoints(config: ReturnType<typeof testConfig>) {
  const log = captureLogger("error");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "test-reader",
    log,
  });
  const stored = await readCompacted(
    kafka,
    topicNames(config.KAFKA_TOPIC).checkpoints,
    { clientId: "test-reader", log },
  );
  return new Map([...stored].map(([k, v]) => [k, JSON.parse(v)]));
}

/** Every recorded rcid exactly once in the topic. */
function assertExactlyOnce(counts: Map<string, number>, ids = ALL) {
  const missing = ids.filter((id) => !counts.has(id));
  const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual({ missing, repeated }, { missing: [], repeated: [] });
}

Deno.test("a row that shows up minutes after newer ones is published once, by the reconcile pass", async () => {
  const clock = { value: LAST + 1000 };
  await using fake = fakeWiki(clock);
  const late = wiki.rows[40]!; // an early edit of the capture, made visible last
  fake.hidden.set(wiki.host, new Set([String(late.rcid)]));
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    POLL_OVERLAP_SECONDS: "10",
    RECONCILE_INTERVAL_SECONDS: "60",
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: iso(FIRST),
  });
  try {
    const stats = () => producer.stats.get(wiki.host)!;
    await eventually(() => stats().published === ALL.length - 1, 60_000);
    // The late row appears when the cursor is already ~5 min past it (the overlap is 10 s).
    assert.ok(LAST - tsOf(late) > 200_000);
    clock.value += 120_000;
    fake.hidden.delete(wiki.host);
    await eventually(() => stats().published === ALL.length, 20_000);
    assert.ok(stats().reconciled >= 1);
  } finally {
    controller.abort();
    await producer.close();
  }
  assertExactlyOnce(await publishedRcids(config));
});

Deno.test("a row stamped after the wiki's now never moves the cursor past the wiki's clock", async () => {
  const mid = tsOf(byTime[Math.floor(byTime.length / 2)]!);
  const clock = { value: mid };
  await using fake = fakeWiki(clock);
  const future = byTime.at(-1)!; // ~150 s ahead of the wiki's clock
  fake.hidden.set(
    wiki.host,
    new Set(
      byTime.filter((r) => tsOf(r) > mid && r !== future).map((r) =>
        String(r.rcid)
      ),
    ),
  );
  const visibleCount = ALL.length - fake.hidden.get(wiki.host)!.size;
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    POLL_OVERLAP_SECONDS: "10",
    RECONCILE_WINDOW_SECONDS: "0",
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: iso(FIRST),
  });
  try {
    const stats = () => producer.stats.get(wiki.host)!;
    await eventually(() => stats().published === visibleCount, 60_000);
    const live = (await checkpoints(config)).get("wikidatawiki");
    assert.ok(
      Date.parse(live.last_ts) <= mid,
      `cursor ${live.last_ts} is past the wiki's clock ${iso(mid)}`,
    );
    clock.value = LAST + 1000;
    fake.hidden.delete(wiki.host);
    await eventually(() => stats().published === ALL.length, 20_000);
  } finally {
    controller.abort();
    await producer.close();
  }
  assertExactlyOnce(await publishedRcids(config));
});

Deno.test("a backfill next to the live producer fills the older range and leaves the live cursor alone", async () => {
  const clock = { value: LAST + 1000 };
  await using fake = fakeWiki(clock);
  const middle = tsOf(byTime[Math.floor(byTime.length / 2)]!);
  const newest = byTime.at(-1)!;
  fake.hidden.set(wiki.host, new Set([String(newest.rcid)]));
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    POLL_OVERLAP_SECONDS: "10",
  });
  await using db = await tempSchema(config);
  const liveSince = byTime.filter((r) => tsOf(r) >= middle && r !== newest);
  const controller = new AbortController();
  const live = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: iso(middle),
  });
  try {
    const stats = () => live.stats.get(wiki.host)!;
    await eventually(() => stats().published === liveSince.length, 60_000);
    const before = (await checkpoints(config)).get("wikidatawiki");

    // The backfill covers everything older than the live start, overlapping it by 20 s.
    const backfill = await startProducer(config, {
      log: captureLogger("warn"),
      signal: new AbortController().signal,
      since: iso(FIRST),
      until: iso(middle + 20_000),
    });
    await backfill.done;
    await backfill.close();

    const after = await checkpoints(config);
    assert.deepEqual(after.get("wikidatawiki"), before, "live cursor moved");
    assert.ok([...after.keys()].some((k) => k.startsWith("backfill:")));

    // The live producer goes on publishing (it was not fenced by the backfill).
    fake.hidden.delete(wiki.host);
    await eventually(() => stats().published === liveSince.length + 1, 20_000);
  } finally {
    controller.abort();
    await live.close();
  }
  const counts = await publishedRcids(config);
  assert.deepEqual(ALL.filter((id) => !counts.has(id)), [], "gap in Kafka");

  const consumer = await startConsumer(config, {
    log: captureLogger("warn"),
    signal: new AbortController().signal,
    idleExitMs: 1500,
    schema: db.name,
  });
  await consumer.done;
  await consumer.close();
  const [row] = await db.sql`select count(*)::int as n,
    count(distinct rcid)::int as d from wiki_recent_changes`;
  assert.deepEqual(row, { n: ALL.length, d: ALL.length });
});

Deno.test("a start older than the wiki keeps is reported: warn log, metric and /healthz detail", async () => {
  const clock = { value: LAST + 1000 };
  await using fake = fakeWiki(clock);
  const kept = byTime[Math.floor(byTime.length / 3)]!;
  fake.purgedBefore.set(wiki.host, String(kept.timestamp));
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
  });
  const log = captureLogger("warn");
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log,
    signal: controller.signal,
    since: iso(FIRST),
  });
  try {
    const warned = await eventually(
      () =>
        log.lines.find((l) => String(l.msg).startsWith("recent changes lost")),
      30_000,
    );
    assert.equal(warned.wiki, "wikidatawiki");
    assert.equal(warned.from, iso(FIRST));
    assert.equal(warned.to, iso(tsOf(kept)));
    const lost = Math.round((tsOf(kept) - FIRST) / 1000);
    assert.equal(warned.lost_seconds, lost);
    const health = producer.health();
    assert.deepEqual(
      (health.details as { gaps: Record<string, unknown> }).gaps[wiki.host],
      { from: iso(FIRST), to: iso(tsOf(kept)), lost_seconds: lost },
    );
    const metrics = await renderMetrics({ producer: producer.stats });
    assert.match(
      metrics,
      new RegExp(
        `wikistream_retention_gap_seconds\\{wiki="${wiki.host}"\\} ${lost}`,
      ),
    );
  } finally {
    controller.abort();
    await producer.close();
  }
});
