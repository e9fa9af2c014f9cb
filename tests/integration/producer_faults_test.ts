/**
 * The producer under API faults, with rows revealed over time in their recorded arrival order
 * (rcids and timestamps going backwards): exactly the recorded set arrives in Kafka, once each.
 */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { publishedRcids } from "../_kafka.ts";
import {
  type Fault,
  loadRecordedWikis,
  loadStreamAsApiWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { sleep } from "../../lib/core/retry.ts";
import { prng } from "../chaos/_random.ts";

Deno.test("producer publishes exactly the recorded set under faults and late rows", async () => {
  const seed = Number(Deno.env.get("CHAOS_SEED") ?? 20180307);
  const random = prng(seed);
  const wiki = loadStreamAsApiWiki();
  const visible = new Map([[wiki.host, 0]]);
  const kinds: Fault[] = [
    "maxlag",
    "429",
    "503html",
    "timeout",
    "truncated",
    "garbage",
    "badrow",
  ];
  const schedule: Fault[] = Array.from(
    { length: 25 },
    () => kinds[Math.floor(random() * kinds.length)]!,
  );
  await using fake = startFakeMediaWiki({
    wikis: [wiki],
    pageSize: 50,
    visible,
    faults: new Map([[wiki.host, []]]),
  });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    HTTP_TIMEOUT_MS: "500",
    POLL_INTERVAL_MS: "10000",
  });
  const log = captureLogger("info");
  const controller = new AbortController();
  // Waits are shortened 200x (a 10 s poll interval becomes 50 ms) so backoffs keep the test short.
  const producer = await startProducer(config, {
    log,
    signal: controller.signal,
    since: "2018-03-07T16:00:00Z",
    sleep: (ms, signal) => sleep(Math.ceil(ms / 200), signal),
  });
  try {
    // Reveal the rows in arrival order, ~60 at a time, injecting a fault now and then.
    while (visible.get(wiki.host)! < wiki.rows.length) {
      visible.set(
        wiki.host,
        Math.min(
          wiki.rows.length,
          visible.get(wiki.host)! + 20 + Math.floor(random() * 80),
        ),
      );
      if (random() < 0.5 && schedule.length) {
        fake.faults.get(wiki.host)!.push(schedule.shift()!);
      }
      await sleep(40);
    }
    for (const f of schedule) fake.faults.get(wiki.host)!.push(f);
    await eventually(
      () => producer.stats.get(wiki.host)!.published >= wiki.rows.length,
      60_000,
    );
    await eventually(
      () => fake.faults.get(wiki.host)!.length === 0,
      30_000,
    );
    await sleep(500); // a few more polls over the overlap: nothing more may appear
  } finally {
    controller.abort();
    await producer.close();
  }
  const counts = await publishedRcids(config);
  const expected = new Set(wiki.rows.map((r) => String(r.rcid)));
  const missing = [...expected].filter((id) => !counts.has(id));
  const extra = [...counts.keys()].filter((id) => !expected.has(id));
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual({ missing, extra, repeated }, {
    missing: [],
    extra: [],
    repeated: [],
  }, `seed ${seed}`);
  assert.equal(counts.size, 3796);
  const s = producer.stats.get(wiki.host)!;
  assert.ok(
    s.duplicates > 0,
    "the overlap re-read rows and the seen-set dropped them",
  );
  assert.ok(
    Object.keys(s.apiErrors).length >= 4,
    `faults were seen and counted: ${JSON.stringify(s.apiErrors)}`,
  );
  assert.ok(
    log.lines.some((l) => l.msg === "poll failed, retrying"),
    "faults are visible in the logs",
  );
  assert.ok(s.rejected >= 1 || !Object.hasOwn(s.apiErrors, "badrow"));
});

Deno.test("a failing wiki never stalls the others", async () => {
  const wikis = loadRecordedWikis().filter((w) =>
    w.host !== "test.wikidata.org"
  );
  const failing = "en.wikipedia.org";
  await using fake = startFakeMediaWiki({
    wikis,
    pageSize: 20,
    faults: new Map([[
      failing,
      Array.from({ length: 10_000 }, (): Fault => "503html"),
    ]]),
  });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wikis.map((w) => w.host).join(","),
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: "2013-01-01T00:00:00Z",
    sleep: (ms, signal) => sleep(Math.min(ms, 100), signal),
  });
  try {
    const healthy = wikis.filter((w) => w.host !== failing);
    await eventually(
      () =>
        healthy.every((w) =>
          producer.stats.get(w.host)!.published === w.rows.length
        ),
      30_000,
    );
    assert.equal(producer.stats.get(failing)!.published, 0);
    assert.ok(producer.stats.get(failing)!.apiErrors.http_503! > 0);
  } finally {
    controller.abort();
    await producer.close();
  }
  const counts = await publishedRcids(config);
  const expected = wikis.filter((w) => w.host !== failing).reduce(
    (n, w) => n + w.rows.length,
    0,
  );
  assert.equal(counts.size, expected);
});
