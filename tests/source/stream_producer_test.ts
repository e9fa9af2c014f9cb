/** Unit tests of lib/source/stream_producer.ts against the fake EventStreams server. */
import assert from "node:assert/strict";
import { followEventStream } from "../../lib/source/stream_producer.ts";
import { newPollerStats } from "../../lib/source/poller.ts";
import { noopLogger } from "../../lib/core/log.ts";
import type { OutRecord } from "../../lib/kafka/client.ts";
import {
  recordedStreamLines,
  startFakeEventStreams,
} from "../fakes/fake_eventstreams.ts";

const TOPICS = {
  events: "e",
  checkpoints: "e.checkpoints",
  rejects: "e.rejects",
  dlq: "e.dlq",
};

Deno.test("followEventStream() stops at once on abort while the stream is idle", async () => {
  const lines = recordedStreamLines().slice(0, 50);
  await using fake = startFakeEventStreams({ lines, cuts: [] });
  const published: OutRecord[] = [];
  const stats = newPollerStats();
  const stop = new AbortController();
  const following = followEventStream({
    url: fake.url,
    userAgent: "wikistream-test",
    wikis: ["*"],
    publisher: {
      publish: (records: OutRecord[]) => {
        published.push(...records);
        return Promise.resolve();
      },
    },
    topics: TOPICS,
    log: noopLogger(),
    signal: stop.signal,
    stats,
    flushMs: 50,
  });
  while (stats.published < lines.length) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // The server keeps the connection open and sends nothing more: only the abort can end it.
  stop.abort();
  const ended = await Promise.race([
    following.then(() => "stopped"),
    new Promise((r) => setTimeout(() => r("still running"), 5_000)),
  ]);
  assert.equal(ended, "stopped");
  assert.equal(published.filter((r) => r.topic === TOPICS.events).length, 50);
});
