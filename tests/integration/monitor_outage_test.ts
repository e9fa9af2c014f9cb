/**
 * `consumer.ts` as a user runs it: /readyz, /metrics, /lag and the dashboard queried while
 * PostgreSQL is stopped for 2 s; once it is back every endpoint answers again, and none hangs.
 */
import assert from "node:assert/strict";
import { createKafka } from "../../lib/kafka/client.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { freePortRange } from "../_ports.ts";
import {
  freshDatabase,
  publishRecords,
  replayedRecords,
  services,
  spawnConsumer,
} from "./_consumer_fixture.ts";

const ENDPOINTS = ["/readyz", "/metrics", "/lag", "/api/dashboard", "/healthz"];

/** GETs `path`; the status, or "hung" when no answer came within `ms`. */
async function get(port: number, path: string, ms: number) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(ms),
    });
    await res.body?.cancel();
    return res.status;
  } catch (err) {
    return (err as Error).name === "TimeoutError" ? "hung" : "refused";
  }
}

Deno.test("consumer.ts: every endpoint answers again within seconds of PostgreSQL returning from an outage", async () => {
  const base = testConfig();
  await using db = await freshDatabase(base.DATABASE_URL);
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: base.KAFKA_BROKERS,
    clientId: base.KAFKA_CLIENT_ID,
    log,
  });
  await publishRecords(kafka, base.KAFKA_TOPIC, replayedRecords(300), { log });
  const port = freePortRange(1);
  const child = await spawnConsumer({
    KAFKA_BROKERS: base.KAFKA_BROKERS.join(","),
    DATABASE_URL: db.url,
    KAFKA_TOPIC: base.KAFKA_TOPIC,
    KAFKA_GROUP_ID: base.KAFKA_GROUP_ID,
    HTTP_PORT: String(port),
  });
  try {
    await eventually(async () => (await get(port, "/readyz", 5000)) === 200);
    for (const p of ENDPOINTS) assert.equal(await get(port, p, 5000), 200, p);
    await services("stop-pg");
    let asked: Promise<number | string>[];
    try {
      // Queried as a newcomer would while the database is down.
      asked = ENDPOINTS.map((p) => get(port, p, 15_000));
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await services("start-pg");
    }
    const back = Date.now();
    const seen: (number | string)[] = [];
    // Once the database is back, every request is answered within its deadline plus the HTTP
    // round trip: 2 s (2.5 s here), the dashboard's snapshot 5.5 s (6 s here); past it, "hung".
    await eventually(
      async () => {
        const statuses = await Promise.all(
          ENDPOINTS.map((p) =>
            get(port, p, p === "/api/dashboard" ? 6000 : 2500)
          ),
        );
        seen.push(...statuses);
        return statuses.every((s) => s === 200);
      },
      15_000,
      250,
    );
    const after = Math.round((Date.now() - back) / 1000);
    assert.ok(
      !seen.includes("hung"),
      `no endpoint hung after the outage: ${seen}`,
    );
    // The requests made during the outage were answered too (503 or 500), none left hanging.
    const outage = await Promise.all(asked);
    assert.ok(
      !outage.includes("hung"),
      `requests during the outage: ${outage}`,
    );
    log.info("endpoints answering again", { seconds_after_restart: after });
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
