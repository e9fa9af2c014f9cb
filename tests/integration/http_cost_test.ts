/**
 * The HTTP side's cost is bounded whatever the number of clients, on real PostgreSQL and Kafka:
 * 50 concurrent dashboard requests cost one set of queries per refresh interval (counted on the
 * dashboard's own pool), and the producer's /readyz reuses one Kafka admin connection.
 */
import assert from "node:assert/strict";
import { createApp } from "../../lib/http/app.ts";
import { createDashboardData } from "../../lib/http/dashboard_data.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { sleep } from "../../lib/core/retry.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";

Deno.test("50 concurrent dashboard requests cost one set of queries per refresh interval", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const queries: string[] = [];
  const counted = connectDb(config.DATABASE_URL, {
    schema: db.name,
    max: 1, // one connection: no connection set-up queries mixed into the count
    onQuery: (q) => queries.push(q),
  });
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    schema: db.name,
  });
  let lagCalls = 0;
  const INTERVAL_MS = 400;
  const data = createDashboardData(counted);
  const app = createApp({
    service: "consumer",
    health: consumer.health,
    ready: consumer.ready,
    lag: () => (lagCalls++, consumer.lag()),
    dashboard: data,
    dashboardIntervalMs: INTERVAL_MS,
    checkIntervalMs: INTERVAL_MS,
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: () => {},
  }, app.fetch);
  try {
    // What one snapshot costs, measured on the same (warm) pool.
    await data.snapshot();
    queries.length = 0;
    await data.snapshot();
    const oneSet = queries.length;
    assert.ok(oneSet >= 6, `one snapshot sent ${oneSet} queries`);
    queries.length = 0;

    const url = `http://127.0.0.1:${server.addr.port}/api/dashboard`;
    const burst = async () => {
      const bodies = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await fetch(url);
          assert.equal(res.status, 200);
          return await res.json();
        }),
      );
      return new Set(bodies.map((b) => b.data.generated_at));
    };
    const first = await burst();
    assert.equal(first.size, 1, "every client got the same snapshot");
    assert.equal(
      queries.length,
      oneSet,
      `50 requests cost one set of queries: ${JSON.stringify(queries)}`,
    );
    assert.equal(lagCalls, 1, "and one lag report");

    await sleep(INTERVAL_MS + 100);
    const second = await burst();
    assert.equal(second.size, 1);
    assert.notDeepEqual(
      second,
      first,
      "a new interval computes a new snapshot",
    );
    assert.equal(
      queries.length,
      2 * oneSet,
      "one more set for the next interval",
    );
    assert.equal(lagCalls, 2);
  } finally {
    controller.abort();
    await server.finished;
    await consumer.close();
    await counted.end({ timeout: 5 });
  }
});

Deno.test("the producer's /readyz reuses one Kafka admin connection", async () => {
  // Bootstrap through a counting proxy: every new client connects to its seed broker first.
  const broker = testConfig().KAFKA_BROKERS[0]!;
  await using proxy = countingProxy(broker);
  const config = testConfig({
    KAFKA_BROKERS: `127.0.0.1:${proxy.port}`,
    WIKIS: "en.wikipedia.org",
  });
  const controller = new AbortController();
  const producer = await startProducer(config, {
    log: captureLogger("warn"),
    signal: controller.signal,
    // The wiki never answers: the test is about /readyz alone.
    source: { siteInfo: hang, fetchPage: hang },
  });
  const app = createApp({
    service: "producer",
    health: producer.health,
    ready: producer.ready,
    checkIntervalMs: 0, // every probe reaches Kafka: only the connection is shared
  });
  try {
    const first = await app.request("/readyz");
    assert.equal(first.status, 200, JSON.stringify(await first.json()));
    const after = proxy.accepted;
    for (let i = 0; i < 20; i++) {
      const res = await app.request("/readyz");
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    assert.equal(proxy.accepted - after, 0, "20 probes opened no connection");
  } finally {
    controller.abort();
    await producer.close();
  }
});

/** A loopback TCP proxy to `target` (host:port) that counts the connections it accepts. */
function countingProxy(
  target: string,
): { port: number; accepted: number } & AsyncDisposable {
  const [hostname, port] = target.split(":") as [string, string];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const state = {
    port: listener.addr.port,
    accepted: 0,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of open) closeQuietly(c);
      await accepting.catch(() => {});
    },
  };
  const pipe = (from: Deno.Conn, to: Deno.Conn) =>
    from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
      for (const c of [from, to]) {
        if (open.delete(c)) closeQuietly(c);
      }
    });
  const accepting = (async () => {
    for await (const conn of listener) {
      state.accepted++;
      const upstream = await Deno.connect({ hostname, port: Number(port) });
      open.add(conn).add(upstream);
      pipe(conn, upstream);
      pipe(upstream, conn);
    }
  })();
  return state;
}

/** Closes a connection that a finished pipe may have closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** A source call that waits until its signal aborts. */
function hang(..._args: unknown[]): Promise<never> {
  const { signal } = _args.at(-1) as { signal?: AbortSignal };
  return new Promise((_resolve, reject) =>
    signal?.addEventListener("abort", () => reject(signal.reason))
  );
}
