/** createApp(): every endpoint through app.request(), with a real consumer behind it where it reads one. */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createDashboardData } from "../../lib/http/dashboard_data.ts";
import { type AppDeps, createApp } from "../../lib/http/app.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { createTransactionalPublisher } from "../../lib/kafka/publisher.ts";
import { createMetrics } from "../../lib/http/metrics.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";

const ARTIFACTS = new URL("../../.artifacts/", import.meta.url);

/** A process without consumer or database, as the producer wires it. */
function producerDeps(overrides: Partial<AppDeps> = {}): AppDeps {
  return {
    service: "producer",
    health: () => ({ ok: true }),
    ready: () => Promise.resolve({ ok: true }),
    metrics: () => "# no samples\n",
    ...overrides,
  };
}

Deno.test("createApp() maps a failed liveness check to 503 with its reason", async () => {
  const app = createApp(producerDeps({
    health: () => ({ ok: false, reason: "No successful poll for 120 s" }),
  }));
  const res = await app.request("/healthz");
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    status: "unhealthy",
    service: "producer",
    ok: false,
    reason: "No successful poll for 120 s",
  });
});

Deno.test("createApp() answers 404 JSON for /lag and /api/dashboard without a consumer", async () => {
  const app = createApp(producerDeps());
  for (const path of ["/lag", "/api/dashboard", "/nope"]) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    assert.equal((await res.json()).error !== undefined, true);
  }
});

Deno.test("createApp() serves a no-database page on / for the producer", async () => {
  const res = await createApp(producerDeps({ service: "<producer>" }))
    .request("/");
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /has no database, so it has no dashboard/);
  assert.match(html, /&lt;producer&gt;/);
});

Deno.test("createApp() is read-only", async () => {
  const app = createApp(producerDeps());
  for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
    const res = await app.request("/healthz", { method });
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    assert.equal((await res.json()).error, "MethodNotAllowed");
  }
});

Deno.test("createApp() never echoes an error message (it may hold secrets)", async () => {
  const app = createApp(producerDeps({
    ready: () =>
      Promise.reject(
        new TypeError("connect postgres://u:hunter2@db:5432/x failed"),
      ),
  }));
  const res = await app.request("/readyz");
  assert.equal(res.status, 500);
  const body = await res.text();
  assert.deepEqual(JSON.parse(body), { error: "TypeError" });
  assert.doesNotMatch(body, /hunter2/);
});

Deno.test("createApp() with a real consumer: every endpoint", async (t) => {
  const config = testConfig({ KAFKA_PARTITIONS: "2" });
  await using db = await tempSchema(config);
  const log = captureLogger("warn");
  const controller = new AbortController();
  const metrics = createMetrics();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
    onBatch: (n, ms) => metrics.observeBatch(n, ms / 1000),
  });
  const app = createApp({
    service: "consumer",
    health: consumer.health,
    ready: consumer.ready,
    lag: consumer.lag,
    metrics: () =>
      metrics.render({ consumer: consumer.stats, lag: consumer.lag }),
    dashboard: createDashboardData(consumer.monitor),
    // Each step sees the state it just made (no answer shared across steps).
    checkIntervalMs: 0,
    dashboardIntervalMs: 0,
  });
  const samples: Record<string, unknown> = {};
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  try {
    // Three changes through Kafka, written by the consumer.
    await using publisher = await createTransactionalPublisher(kafka, {
      transactionalId: config.KAFKA_TRANSACTIONAL_ID,
      log,
    });
    const now = Date.now();
    await publisher.publish([1, 2, 3].map((i) => ({
      topic: topicNames(config.KAFKA_TOPIC).events,
      key: `enwiki:${i}`,
      value: JSON.stringify(envelope(i, new Date(now - i * 1000))),
    })));
    await eventually(() => Promise.resolve(consumer.stats.written === 3));

    await t.step("GET /healthz", async () => {
      const res = await app.request("/healthz");
      assert.equal(res.status, 200);
      samples.healthz = await res.json();
      assert.deepEqual(samples.healthz, {
        status: "ok",
        service: "consumer",
        ok: true,
      });
    });
    await t.step("GET /readyz", async () => {
      const res = await app.request("/readyz");
      assert.equal(res.status, 200);
      samples.readyz = await res.json();
      assert.equal((samples.readyz as { status: string }).status, "ready");
    });
    await t.step("GET /lag once caught up", async () => {
      const body = await eventually(async () => {
        const b = await (await app.request("/lag")).json();
        return b.total_lag === "0" ? b : false;
      });
      samples.lag = body;
      assert.equal(body.group, config.KAFKA_GROUP_ID);
      assert.equal(body.partitions.length, 2);
      for (const p of body.partitions) {
        assert.equal(p.lag, "0");
        assert.ok(p.committed === null || p.committed === p.end);
      }
      assert.equal(typeof body.time_lag_seconds, "number");
      assert.ok(Date.parse(body.newest_event_time) <= Date.now());
    });
    await t.step("GET /metrics", async () => {
      const res = await app.request("/metrics");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/plain/);
      const text = await res.text();
      samples.metrics = text;
      assert.match(text, /^wikistream_written_total 3$/m);
      assert.match(text, /^wikistream_consumed_total 3$/m);
      assert.match(text, /^wikistream_dead_lettered_total 0$/m);
      assert.match(text, /^wikistream_consumer_lag_total 0$/m);
      assert.match(text, /^wikistream_consumer_lag\{partition="0"\} 0$/m);
      assert.match(text, /^wikistream_batch_records_count [1-3]$/m);
      assert.match(text, /^wikistream_batch_duration_seconds_count [1-3]$/m);
    });
    await t.step("GET / and /dashboard.js", async () => {
      const page = await app.request("/");
      assert.equal(page.status, 200);
      assert.match(
        page.headers.get("content-security-policy")!,
        /default-src 'none'/,
      );
      assert.match(await page.text(), /<svg id="chart"/);
      const js = await app.request("/dashboard.js");
      assert.match(js.headers.get("content-type")!, /javascript/);
      assert.match(await js.text(), /\/api\/dashboard/);
    });
    await t.step("GET /api/dashboard", async () => {
      const res = await app.request("/api/dashboard");
      assert.equal(res.status, 200);
      const body = await res.json();
      samples.api_dashboard = body;
      assert.equal(body.data.mode, "live");
      assert.deepEqual(body.data.totals, {
        changes: 3,
        bots: 1,
        anonymous: 0,
        humans: 2,
        new_pages: 0,
      });
      assert.deepEqual(body.data.wikis, ["enwiki"]);
      assert.equal(body.lag.total_lag, "0");
      assert.equal(body.data.top_pages[0].title, "Page 7");
      assert.equal(body.data.top_pages[0].edits, 3);
    });
    await t.step(
      "GET /readyz is 503 with a reason once PostgreSQL is gone",
      async () => {
        await consumer.monitor.end();
        const res = await app.request("/readyz");
        assert.equal(res.status, 503);
        const body = await res.json();
        assert.equal(body.status, "not_ready");
        assert.match(body.reason, /^PostgreSQL unavailable: \w+ \(\w+\): \S/);
        const dash = await app.request("/api/dashboard");
        assert.equal(dash.status, 503);
        assert.match(
          (await dash.json()).message,
          /^PostgreSQL unavailable: \w+ \(\w+\): \S/,
        );
      },
    );
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await Deno.writeTextFile(
      new URL("http_samples.json", ARTIFACTS),
      JSON.stringify(samples, null, 2),
    );
  } finally {
    controller.abort();
    await consumer.close().catch(() => {});
  }
});

Deno.test("the consumer's /healthz turns 503 when records are pending and no batch is written", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  const log = captureLogger("error");
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
    stallMs: 1000,
  });
  const app = createApp({
    service: "consumer",
    health: consumer.health,
    ready: consumer.ready,
  });
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  let lock: Promise<unknown> = Promise.resolve();
  try {
    assert.equal((await app.request("/healthz")).status, 200);
    // The table is locked, so the batch cannot be written and its offset is not committed.
    lock = db.sql.begin(async (tx) => {
      await tx`lock table wiki_recent_changes in access exclusive mode`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    await using publisher = await createTransactionalPublisher(kafka, {
      transactionalId: config.KAFKA_TRANSACTIONAL_ID,
      log,
    });
    await publisher.publish([{
      topic: topicNames(config.KAFKA_TOPIC).events,
      key: "enwiki:1",
      value: JSON.stringify(envelope(1, new Date())),
    }]);
    const body = await eventually(async () => {
      const res = await app.request("/healthz");
      return res.status === 503 ? await res.json() : false;
    }, 60_000);
    assert.equal(body.status, "unhealthy");
    // Lag counts offsets: the change and, until it is consumed, its transaction's commit marker.
    assert.match(body.reason, /^No batch written for \d+ s while lag is 2$/);
    // Nothing was lost: the change is still unconsumed in Kafka.
    assert.equal(consumer.stats.written, 0);
  } finally {
    release.resolve();
    await lock;
    controller.abort();
    await consumer.close().catch(() => {});
  }
});

/** A producer envelope for one enwiki edit of page 7 (every third change by a bot). */
function envelope(i: number, at: Date) {
  return {
    v: 1,
    source: "action_api",
    wiki: "enwiki",
    server_name: "en.wikipedia.org",
    fetched_at: new Date().toISOString(),
    row: {
      type: "edit",
      ns: 0,
      title: "Page 7",
      pageid: 7,
      revid: 100 + i,
      old_revid: 99 + i,
      rcid: 1000 + i,
      user: "Editor",
      userid: 42,
      ...(i % 3 === 0 ? { bot: "" } : {}),
      oldlen: 10,
      newlen: 20,
      timestamp: at.toISOString().replace(/\.\d{3}Z$/, "Z"),
      comment: "test",
      tags: [],
    },
  };
}
