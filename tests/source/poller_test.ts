import assert from "node:assert/strict";
import {
  buildPage,
  newPollerStats,
  pollWiki,
} from "../../lib/source/poller.ts";
import { Cursor } from "../../lib/source/cursor.ts";
import { noopLogger } from "../../lib/core/log.ts";
import type { OutRecord } from "../../lib/kafka/client.ts";
import type { RecentChangesSource } from "../../lib/source/action_api.ts";
import { FencedError, UpstreamError } from "../../lib/core/errors.ts";
import { loadRecordedWikis } from "../fakes/fake_mediawiki.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const TOPICS = {
  events: "rc",
  checkpoints: "rc.checkpoints",
  rejects: "rc.rejects",
};
const lv = loadRecordedWikis().find((w) => w.host === "lv.wikipedia.org")!;
const base = {
  wiki: "lvwiki",
  host: lv.host,
  serverName: lv.servername,
  topics: TOPICS,
  keepMs: 120_000,
  wikiNowMs: Date.parse("2020-04-12T15:00:00Z"),
  now: new Date("2020-04-12T15:00:00Z"),
};

Deno.test("buildPage() publishes new rows once and ends with the checkpoint", () => {
  const first = buildPage(lv.rows, {
    ...base,
    cursor: Cursor.at("2020-04-01T00:00:00Z"),
  });
  assert.equal(first.fresh.length, 100);
  assert.equal(first.records.length, 101);
  assert.equal(first.records.at(-1)!.topic, "rc.checkpoints");
  assert.equal(first.next.lastMs, Date.parse("2020-04-12T14:01:51Z"));
  const again = buildPage(lv.rows, { ...base, cursor: first.next });
  const inWindow = lv.rows.filter((r) =>
    Date.parse(String(r.timestamp)) >= first.next.lastMs - 120_000
  );
  // Rows inside the window are dropped (and a few older ones of the same 5-minute mark).
  assert.ok(again.duplicates >= inWindow.length);
  assert.ok(
    again.fresh.every((f) => f.timestampMs < first.next.lastMs - 120_000),
  );
});

Deno.test("buildPage() sends a bad row to the rejects topic once, without moving the cursor", () => {
  const bad = {
    ...lv.rows[0]!,
    rcid: 1,
    timestamp: "2099-01-01T00:00:00Z",
    type: "bogus",
  };
  const cursor = Cursor.at("2020-04-01T00:00:00Z");
  const page = buildPage([bad], { ...base, cursor });
  assert.equal(page.rejected, 1);
  assert.equal(page.records[0]!.topic, "rc.rejects");
  assert.match(JSON.parse(page.records[0]!.value).reason, /type/);
  assert.equal(
    page.next.lastMs,
    cursor.lastMs,
    "an untrusted timestamp never moves the cursor",
  );
  assert.equal(
    buildPage([bad], { ...base, cursor: page.next }).records.length,
    0,
  );
});

Deno.test("pollWiki() retries a failed publish from the last committed cursor and loses nothing", async () => {
  const rows = lv.rows;
  const source: RecentChangesSource = {
    siteInfo: () =>
      Promise.resolve({
        host: lv.host,
        wiki: "lvwiki",
        serverName: lv.servername,
        now: "2020-04-12T15:00:00Z",
      }),
    fetchPage(_host, req) {
      const start = Date.parse(req.start);
      const visible = rows.filter((r) =>
        Date.parse(String(r.timestamp)) >= start
      )
        .sort((a, b) => String(a.timestamp).localeCompare(String(b.timestamp)));
      const offset = Number(req.continue?.offset ?? 0);
      const page = visible.slice(offset, offset + 30);
      const cont = offset + 30 < visible.length
        ? { offset: String(offset + 30) }
        : undefined;
      return Promise.resolve({ rows: page, continue: cont });
    },
  };
  const published: OutRecord[] = [];
  let failNext = 2;
  const publisher = {
    publish(records: OutRecord[]) {
      if (failNext-- > 0) {
        return Promise.reject(
          new UpstreamError(0, "kafka_down", "Cannot publish"),
        );
      }
      published.push(...records);
      return Promise.resolve();
    },
  };
  const stats = newPollerStats();
  await pollWiki({
    host: lv.host,
    source,
    publisher,
    topics: TOPICS,
    restored: new Map(),
    overlapMs: 120_000,
    pollIntervalMs: 1,
    since: "2020-04-01T00:00:00Z",
    until: "2020-04-13T00:00:00Z",
    log: noopLogger(),
    signal: new AbortController().signal,
    stats,
    sleep: () => Promise.resolve(),
  });
  const events = published.filter((r) => r.topic === "rc").map((r) =>
    JSON.parse(r.value).row.rcid
  );
  assert.equal(events.length, 100);
  assert.equal(new Set(events).size, 100);
  assert.equal(stats.apiErrors.kafka_down, 2);
});

Deno.test("pollWiki() stops on a fenced producer instead of retrying, and caps a Kafka backoff at 30 s", async (t) => {
  const source: RecentChangesSource = {
    siteInfo: () =>
      Promise.resolve({
        host: lv.host,
        wiki: "lvwiki",
        serverName: lv.servername,
        now: "2020-04-12T15:00:00Z",
      }),
    fetchPage: () => Promise.resolve({ rows: lv.rows, continue: undefined }),
  };
  const run = (publish: () => Promise<void>, sleeps: number[], stop = 99) => {
    const controller = new AbortController();
    return pollWiki({
      host: lv.host,
      source,
      publisher: { publish },
      topics: TOPICS,
      restored: new Map(),
      overlapMs: 120_000,
      pollIntervalMs: 1,
      since: "2020-04-01T00:00:00Z",
      until: "2020-04-13T00:00:00Z",
      log: noopLogger(),
      signal: controller.signal,
      sleep: (ms) => {
        sleeps.push(ms);
        if (sleeps.length >= stop) controller.abort();
        return Promise.resolve();
      },
    }).catch((err) => err);
  };
  await t.step("fenced: rejects at once", async () => {
    // The publisher turns Kafka's PRODUCER_FENCED into a FencedError (lib/kafka/publisher.ts).
    const fenced = new FencedError("test-txn", {
      cause: Object.assign(new Error("Producer fenced"), {
        name: "KafkaJSProtocolError",
        type: "PRODUCER_FENCED",
      }),
    });
    const sleeps: number[] = [];
    const got = await run(() => Promise.reject(fenced), sleeps);
    assert.equal(got, fenced);
    assert.deepEqual(sleeps, [], "never retried");
  });
  await t.step("Kafka away: backoff capped at 30 s", async () => {
    const down = Object.assign(new Error("Connection error"), {
      name: "KafkaJSNumberOfRetriesExceeded",
    });
    const sleeps: number[] = [];
    await run(() => Promise.reject(down), sleeps, 12);
    assert.equal(sleeps.length, 12);
    assert.ok(Math.max(...sleeps) <= 30_000, `${sleeps}`);
    assert.ok(Math.max(...sleeps) >= 15_000, `${sleeps}`);
  });
});
