/**
 * Outages longer than kafkajs's retry budget, on a Kafka and a PostgreSQL of the test's own (free
 * ports, own folder): producer.ts and consumer.ts are killed and started again while the broker
 * is down (as a scheduler does after a node failure), and the consumer is started while
 * PostgreSQL is down. Both must wait, answer /readyz 503 naming the dependency, and resume when
 * it returns, with every recorded row published once and written once.
 */
import assert from "node:assert/strict";
import {
  loadStreamAsApiWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { publishedRcids } from "../_kafka.ts";
import { freePortRange } from "../_ports.ts";
import {
  assertAggregatesMatch,
  assertMatchesSource,
  freshDatabase,
  publishRecords,
  replayedRecords,
} from "./_consumer_fixture.ts";
import { type Child, spawnService } from "../chaos/_process.ts";
import { adminUrl, servicesCommand } from "../_pg_admin.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** kafkajs gives up after about 40 s (lib/kafka/client.ts: 8 retries, 0.3 s doubling to 10 s). */
const BEYOND_RETRY_BUDGET_MS = 50_000;

/** The test's own Kafka and PostgreSQL; dispose stops them and removes their folder. */
async function ownServices() {
  const kafkaPort = freePortRange(2);
  const pgPort = freePortRange(1);
  const dir = await Deno.makeTempDir({ prefix: "wikistream-outage-" });
  await Deno.chmod(dir, 0o755); // the postgres system user enters it when we are root
  const env = {
    WIKISTREAM_KAFKA_PORT: String(kafkaPort),
    WIKISTREAM_PG_PORT: String(pgPort),
    WIKISTREAM_SERVICES_DIR: `${dir}/services`,
  };
  const run = async (cmd: string) => {
    const out = await new Deno.Command("bash", {
      args: [`${ROOT}scripts/services.sh`, cmd],
      env,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `Cannot run services.sh ${cmd}: ${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
  };
  await run("start");
  return {
    run,
    brokers: `127.0.0.1:${kafkaPort}`,
    // The pipeline's role and the superuser that creates its databases.
    appUrl: /DATABASE_URL=(\S+)/.exec(await servicesCommand("env", env))![1]!,
    adminUrl: await adminUrl(env),
    async [Symbol.asyncDispose]() {
      await run("stop").catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** GET /readyz of a child's HTTP port: status and body. */
async function readyz(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function stopAll(children: Child[]): Promise<number[]> {
  const codes = [];
  for (const c of children) {
    c.killed = true;
    try {
      c.child.kill("SIGTERM");
    } catch { /* already gone */ }
    codes.push((await c.status).code);
  }
  return codes;
}

function assertRunning(c: Child, name: string): void {
  assert.ok(!c.exited, `${name} exited during the outage: ${c.tail()}`);
}

Deno.test("producer and consumer restarted while Kafka is down longer than kafkajs's retry budget resume with every row once", async () => {
  await using svc = await ownServices();
  await using db = await freshDatabase(svc.appUrl, { adminUrl: svc.adminUrl });
  const wiki = loadStreamAsApiWiki();
  const visible = new Map([[wiki.host, 1000]]);
  await using fake = startFakeMediaWiki({
    wikis: [wiki],
    pageSize: 100,
    visible,
  });
  const config = testConfig({
    KAFKA_BROKERS: svc.brokers,
    DATABASE_URL: db.url,
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
  });
  const httpPort = freePortRange(1);
  const env = {
    KAFKA_BROKERS: svc.brokers,
    DATABASE_URL: db.url,
    KAFKA_TOPIC: config.KAFKA_TOPIC,
    KAFKA_GROUP_ID: config.KAFKA_GROUP_ID,
    KAFKA_TRANSACTIONAL_ID: config.KAFKA_TRANSACTIONAL_ID,
    KAFKA_CLIENT_ID: config.KAFKA_CLIENT_ID,
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
    POLL_INTERVAL_MS: "300",
    HTTP_PORT: String(httpPort),
    PRODUCER_HTTP_PORT: "0",
    LOG_LEVEL: "info",
  };
  const since = ["--since", "2018-03-07T00:00:00Z"];
  const spawn = (entry: string, args: string[] = []) =>
    spawnService(`${ROOT}${entry}`, args, env);
  const count = async () => {
    const [r] = await db
      .sql`select count(*)::int as n from wiki_recent_changes`;
    return r!.n as number;
  };

  let codes: number[] = [];
  let producer = await spawn("producer.ts", since);
  let consumer = await spawn("consumer.ts");
  const children = () => [producer, consumer];
  try {
    await eventually(async () => (await count()) > 0, 120_000, 250);
    await svc.run("stop-kafka");
    // Both die with the node and are started again by the scheduler while the broker is away.
    for (const c of children()) {
      c.killed = true;
      c.child.kill("SIGKILL");
      await c.status;
    }
    visible.set(wiki.host, 2500); // rows appear while nothing can publish
    producer = await spawn("producer.ts", since);
    consumer = await spawn("consumer.ts");
    const downSince = Date.now();
    // Not ready from the first moment; named once kafkajs gave up its first attempt (~40 s).
    const first = await eventually(() => readyz(httpPort), 30_000, 250);
    assert.equal(first.status, 503);
    const r = await eventually(
      async () => {
        const r = await readyz(httpPort);
        assert.equal(r.status, 503);
        return r.body.details?.dependency === "kafka" && r;
      },
      90_000,
      500,
    );
    assert.match(r.body.reason, /^Kafka unavailable: /);
    while (Date.now() - downSince < BEYOND_RETRY_BUDGET_MS) {
      assertRunning(producer, "producer");
      assertRunning(consumer, "consumer");
      await new Promise((r) => setTimeout(r, 1000));
    }
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`))
      .text();
    assert.match(metrics, /wikistream_dependency_up\{dependency="kafka"\} 0/);
    await svc.run("start-kafka");
    visible.set(wiki.host, wiki.rows.length);
    await eventually(
      async () => (await count()) === wiki.rows.length,
      180_000,
      500,
    );
    await eventually(async () => (await readyz(httpPort)).status === 200);
    assertRunning(producer, "producer");
    assertRunning(consumer, "consumer");
  } finally {
    codes = await stopAll(children());
  }
  assert.deepEqual(codes, [0, 0], children().map((c) => c.tail()).join("\n"));
  const want = new Set(wiki.rows.map((r) => String(r.rcid)));
  const rows = await db.sql<{ rcid: string }[]>`
    select rcid::text as rcid from wiki_recent_changes`;
  assert.equal(rows.length, want.size);
  assert.deepEqual(new Set(rows.map((r) => r.rcid)), want);
  await assertAggregatesMatch(db.sql);
  const published = await publishedRcids(config);
  const repeated = [...published].filter(([, n]) => n > 1);
  assert.deepEqual(repeated, [], "no change published twice");
  assert.equal(published.size, want.size);
});

Deno.test("consumer started while PostgreSQL is down waits, then writes every row once", async () => {
  await using svc = await ownServices();
  const db = await freshDatabase(svc.appUrl, { adminUrl: svc.adminUrl });
  const config = testConfig({
    KAFKA_BROKERS: svc.brokers,
    DATABASE_URL: db.url,
  });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const source = replayedRecords(5000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source, { log });
  await db.sql.end({ timeout: 5 });
  const httpPort = freePortRange(1);
  await svc.run("stop-pg");
  let code: number | undefined;
  const consumer = await spawnService(`${ROOT}consumer.ts`, [], {
    KAFKA_BROKERS: svc.brokers,
    DATABASE_URL: db.url,
    KAFKA_TOPIC: config.KAFKA_TOPIC,
    KAFKA_GROUP_ID: config.KAFKA_GROUP_ID,
    KAFKA_CLIENT_ID: config.KAFKA_CLIENT_ID,
    HTTP_PORT: String(httpPort),
    LOG_LEVEL: "info",
  });
  try {
    const r = await eventually(
      async () => {
        const r = await readyz(httpPort);
        return r.status === 503 && r;
      },
      30_000,
      250,
    );
    assert.equal(r.body.details?.dependency, "postgresql");
    assert.match(r.body.reason, /PostgreSQL/);
    await new Promise((r) => setTimeout(r, 8000));
    assertRunning(consumer, "consumer");
    await svc.run("start-pg");
    const sql = connectDb(db.url, { max: 1 });
    try {
      await eventually(
        async () => {
          const [r] =
            await sql`select count(*)::int as n from wiki_recent_changes`
              .catch(() => [{ n: -1 }]);
          return r!.n === source.length;
        },
        120_000,
        500,
      );
      await assertMatchesSource(sql, source);
    } finally {
      await sql.end({ timeout: 5 });
    }
  } finally {
    [code] = await stopAll([consumer]);
    await db[Symbol.asyncDispose]();
  }
  assert.equal(code, 0, consumer.tail());
});
