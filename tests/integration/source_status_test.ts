/**
 * An unreachable Wikimedia is visible: the producer (real Kafka) reports each wiki's last error
 * and retry in /healthz details and on /api/dashboard at once, and /healthz turns 503 naming the
 * wiki and its error once it stalls.
 */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { createApp, type SourceStatus } from "../../lib/http/app.ts";
import { createDashboardData } from "../../lib/http/dashboard_data.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";
import { freePortRange } from "../_ports.ts";

Deno.test("producer against an unreachable wiki shows its source status, then turns unhealthy naming it", async () => {
  // Nothing listens on this port: every request fails to connect.
  const closed = freePortRange(1);
  const config = testConfig({
    MEDIAWIKI_API_URL: `http://127.0.0.1:${closed}/{host}/w/api.php`,
    WIKIS: "en.wikipedia.org",
    HEALTH_STALL_SECONDS: "2",
    POLL_INTERVAL_MS: "100",
    HTTP_TIMEOUT_MS: "500",
  });
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("error"),
    signal: controller.signal,
  });
  const app = createApp({
    service: "wikistream",
    health: producer.health,
    ready: producer.ready,
    sources: producer.sources,
    dashboard: createDashboardData(db.sql),
  });
  const healthz = async () => {
    const r = await app.request("/healthz");
    return { status: r.status, body: await r.json() };
  };
  try {
    // Before any stall: still 200, but the details already say what is wrong.
    let first: { status: number; body: Record<string, unknown> } | undefined;
    await eventually(
      async () => {
        first = await healthz();
        const s =
          (first.body.details as { sources: SourceStatus[] }).sources[0];
        return s?.state === "retrying";
      },
      10_000,
      50,
    );
    assert.equal(first!.status, 200);
    const [source] = (first!.body.details as { sources: SourceStatus[] })
      .sources;
    assert.equal(source!.wiki, "en.wikipedia.org");
    assert.equal(source!.last_success, null);
    assert.ok(source!.last_error, "the error is shown");
    assert.match(source!.last_error.name, /Error$/);
    assert.ok(source!.last_error.message.length > 0);
    assert.ok(
      typeof source!.retry_in_seconds === "number" &&
        source!.retry_in_seconds >= 0,
    );

    const dash = await (await app.request("/api/dashboard")).json();
    assert.equal(dash.data.mode, "empty");
    assert.equal(dash.sources[0].wiki, "en.wikipedia.org");
    assert.ok(dash.sources[0].last_error);

    // After HEALTH_STALL_SECONDS without a success: 503, naming the wiki and its last error.
    let late: { status: number; body: Record<string, unknown> } | undefined;
    await eventually(
      async () => {
        late = await healthz();
        return late.status === 503;
      },
      15_000,
      100,
    );
    assert.match(
      String(late!.body.reason),
      /No successful poll for 2 s: en\.wikipedia\.org \(last error: \w*Error: .+\)/,
    );
    const stalled = (late!.body.details as { sources: SourceStatus[] })
      .sources[0];
    assert.equal(stalled!.state, "stalled");

    const bad = await app.request("/api/dashboard?window=2w");
    assert.equal(bad.status, 400);
  } finally {
    controller.abort();
    await producer.close();
  }
});
