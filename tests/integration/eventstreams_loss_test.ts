/**
 * SOURCE=eventstreams on real Kafka: a publish failure is retried (not fatal), and the checkpoint
 * is written only when it changed, at most once a second, and stays under 64 KiB.
 */
import assert from "node:assert/strict";
import { startProducer, topicNames } from "../../lib/pipeline/producer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { readToEnd } from "../../lib/kafka/compacted.ts";
import {
  recordedStreamLines,
  startFakeEventStreams,
} from "../fakes/fake_eventstreams.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";

const lines = recordedStreamLines();
const metaIds = new Set(lines.map((l) => JSON.parse(l).meta.id as string));

function kafkaOf(config: ReturnType<typeof testConfig>) {
  return createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "t",
    log: captureLogger("error"),
  });
}

/** Every record of a topic, in order. */
async function records(config: ReturnType<typeof testConfig>, topic: string) {
  const out: { key: string; value: string; timestamp: number }[] = [];
  await readToEnd(kafkaOf(config), topic, (r) => {
    out.push({
      key: new TextDecoder().decode(r.key ?? new Uint8Array()),
      value: new TextDecoder().decode(r.value!),
      timestamp: Number(r.timestamp),
    });
  }, { clientId: "t", log: captureLogger("error") });
  return out;
}

/** Sets (or, with undefined, resets) one topic config value. */
async function setTopicConfig(
  config: ReturnType<typeof testConfig>,
  topic: string,
  entries: { name: string; value: string }[],
) {
  const admin = kafkaOf(config).admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: 2, name: topic, configEntries: entries }],
    });
  } finally {
    await admin.disconnect();
  }
}

Deno.test("eventstreams retries a failed Kafka publish instead of exiting, and loses nothing", async () => {
  await using fake = startFakeEventStreams({ lines });
  const config = testConfig({
    SOURCE: "eventstreams",
    EVENTSTREAMS_URL: fake.url,
    WIKIS: "www.wikidata.org",
  });
  const topics = topicNames(config.KAFKA_TOPIC);
  const log = captureLogger("info");
  const controller = new AbortController();
  // First start creates the topics; then every event batch is refused (too large) for a while.
  const producer = await startProducer(config, {
    log,
    signal: controller.signal,
    sleep: (ms, signal) =>
      new Promise((r, j) => {
        const t = setTimeout(r, Math.min(ms, 100));
        signal?.addEventListener("abort", () => {
          clearTimeout(t);
          j(signal.reason);
        }, { once: true });
      }),
  });
  let failed: unknown;
  producer.done.catch((err) => failed = err);
  try {
    await setTopicConfig(config, topics.events, [
      { name: "max.message.bytes", value: "200" },
    ]);
    await eventually(
      () =>
        failed ??
          log.lines.some((l) => l.msg === "poll failed, retrying"),
      30_000,
      20,
    );
    assert.equal(failed, undefined, `the producer exited: ${failed}`);
    await setTopicConfig(config, topics.events, [
      { name: "max.message.bytes", value: "1048588" },
    ]);
    const stats = producer.stats.get("eventstreams")!;
    await eventually(() => failed ?? stats.published === metaIds.size, 60_000);
    assert.equal(failed, undefined, `the producer exited: ${failed}`);
  } finally {
    controller.abort();
    await producer.close();
  }
  const events = await records(config, topics.events);
  const ids = events.map((r) => JSON.parse(r.value).row.meta.id);
  assert.equal(ids.length, metaIds.size);
  assert.equal(new Set(ids).size, metaIds.size);
});

Deno.test("eventstreams writes its checkpoint only when it changed, at most once a second, under 64 KiB", async () => {
  await using fake = startFakeEventStreams({ lines });
  const config = testConfig({
    SOURCE: "eventstreams",
    EVENTSTREAMS_URL: fake.url,
    WIKIS: "www.wikidata.org",
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
  });
  try {
    const stats = producer.stats.get("eventstreams")!;
    await eventually(() => stats.published === metaIds.size, 60_000);
    await new Promise((r) => setTimeout(r, 2500)); // idle: nothing changes, nothing is written
  } finally {
    controller.abort();
    await producer.close();
  }
  const cps =
    (await records(config, topicNames(config.KAFKA_TOPIC).checkpoints))
      .filter((r) => r.key === "eventstreams");
  assert.ok(cps.length >= 2, `${cps.length} checkpoints`);
  const largest = Math.max(
    ...cps.map((r) => new TextEncoder().encode(r.value).length),
  );
  assert.ok(largest < 64 * 1024, `largest checkpoint ${largest} bytes`);
  for (let i = 1; i < cps.length; i++) {
    const gap = cps[i]!.timestamp - cps[i - 1]!.timestamp;
    assert.ok(gap >= 950, `checkpoints ${i - 1} and ${i} only ${gap} ms apart`);
    assert.notEqual(
      JSON.parse(cps[i]!.value).last_event_id,
      JSON.parse(cps[i - 1]!.value).last_event_id,
      "an unchanged checkpoint was written again",
    );
  }
});
