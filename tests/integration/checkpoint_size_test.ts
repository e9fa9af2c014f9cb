/**
 * The API checkpoint at Wikidata's rate on real Kafka: a backfill through an hour of rows (the
 * recorded 2018 Wikidata capture repeated with shifted rcids and times, 15 rows/s) remembering
 * the whole window never writes a checkpoint past 64 KiB, and never stalls.
 */
import assert from "node:assert/strict";
import { startProducer, topicNames } from "../../lib/pipeline/producer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { readToEnd } from "../../lib/kafka/compacted.ts";
import { Cursor } from "../../lib/source/cursor.ts";
import {
  loadStreamAsApiWiki,
  type RecordedWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { captureLogger, testConfig } from "../_helpers.ts";

/** `seconds` of rows at 15/s: copy k of the capture shifts rcids past copy k-1 and times by k periods. */
function wikidataRate(seconds: number): RecordedWiki {
  const base = loadStreamAsApiWiki();
  const ids = base.rows.map((r) => Number(r.rcid));
  const low = Math.min(...ids), span = Math.max(...ids) - low + 1;
  const period = Math.round(base.rows.length / 15 * 1000);
  const copies = Math.ceil(seconds * 1000 / period);
  const rows = [];
  for (let k = 0; k < copies; k++) {
    for (const r of base.rows) {
      rows.push({
        ...r,
        rcid: Number(r.rcid) + k * span,
        timestamp: new Date(Date.parse(String(r.timestamp)) + k * period)
          .toISOString().replace(".000Z", "Z"),
      });
    }
  }
  return { ...base, rows };
}

Deno.test("an hour of Wikidata-rate rows remembered for the reconcile window keeps each checkpoint under 64 KiB", async () => {
  const wiki = wikidataRate(3600);
  const times = wiki.rows.map((r) => Date.parse(String(r.timestamp)));
  const first = Math.min(...times), last = Math.max(...times);
  await using fake = startFakeMediaWiki({ wikis: [wiki], pageSize: 5000 });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    // The previous code could remember a window only through the overlap.
    POLL_OVERLAP_SECONDS: "21600",
    RECONCILE_WINDOW_SECONDS: "21600",
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    since: new Date(first).toISOString(),
    until: new Date(last + 1000).toISOString(),
  });
  const timeout = setTimeout(() => controller.abort(), 240_000);
  try {
    await producer.done;
  } finally {
    clearTimeout(timeout);
    await producer.close();
  }
  assert.ok(!controller.signal.aborted, "the backfill stalled");
  assert.equal(producer.stats.get(wiki.host)!.published, wiki.rows.length);

  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "t",
    log: captureLogger("error"),
  });
  const sizes: number[] = [];
  let latest = "";
  await readToEnd(kafka, topicNames(config.KAFKA_TOPIC).checkpoints, (r) => {
    sizes.push(r.value!.length);
    latest = new TextDecoder().decode(r.value!);
  }, { clientId: "t", log: captureLogger("error") });
  assert.ok(sizes.length > 0);
  assert.ok(Math.max(...sizes) < 64 * 1024, `largest ${Math.max(...sizes)} B`);
  const cursor = Cursor.fromCheckpoint(JSON.parse(latest));
  const forgotten = wiki.rows.filter((r) => !cursor.has(String(r.rcid)));
  assert.equal(forgotten.length, 0, "every rcid of the window is remembered");
});
