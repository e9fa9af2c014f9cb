/**
 * PostgreSQL crashes (`pg_ctl stop -m immediate`: no checkpoint, no clean shutdown) while rows
 * flow, three times, and restarts: every row arrives, once. Runs a durable PostgreSQL of its own
 * (scripts/services.sh defaults: fsync, synchronous_commit and full_page_writes on) on a free
 * port and in a folder of its own, beside the shared Kafka.
 */
import assert from "node:assert/strict";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import { freePortRange } from "../_ports.ts";
import { servicesCommand } from "../_pg_admin.ts";
import {
  assertMatchesSource,
  publishRecords,
  replayedRecords,
} from "./_consumer_fixture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs a command; throws with its stderr when it fails. */
async function run(cmd: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

/** `pg_ctl stop -m immediate` on the data folder, as the postgres user when we are root. */
async function crash(pgDir: string): Promise<void> {
  const bin = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b)).at(-1);
  const pgCtl = `/usr/lib/postgresql/${bin}/bin/pg_ctl`;
  const args = ["-D", pgDir, "-m", "immediate", "-w", "stop"];
  if (Deno.uid() === 0) {
    await run("runuser", ["-u", "postgres", "--", pgCtl, ...args], {});
  } else await run(pgCtl, args, {});
}

Deno.test("consumer: PostgreSQL crashed three times while rows flow, every row arrives once", async () => {
  const port = freePortRange(1);
  const dir = await Deno.makeTempDir({ prefix: "wikistream-crash-" });
  await Deno.chmod(dir, 0o755); // the postgres user must reach the data folder
  // Durable on purpose: an empty WIKISTREAM_PG_FAST keeps the script's durable defaults.
  const env = {
    WIKISTREAM_PG_PORT: String(port),
    WIKISTREAM_SERVICES_DIR: `${dir}/services`,
    WIKISTREAM_PG_FAST: "",
  };
  const services = (cmd: string) =>
    run("bash", [`${ROOT}scripts/services.sh`, cmd], env);
  const servicesOutput = (cmd: string) => servicesCommand(cmd, env);
  await services("start-pg");
  // The URL (with the role's generated password) as services.sh prints it.
  const printed = await servicesOutput("env");
  const url = /DATABASE_URL=(\S+)/.exec(printed)?.[1];
  assert.ok(url, "services.sh printed DATABASE_URL");
  const config = testConfig({ DATABASE_URL: url });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const reader = connectDb(config.DATABASE_URL, { max: 1 });
  const count = async () =>
    (await reader`select count(*)::int as n from wiki_recent_changes`)[0]!
      .n as number;
  const source = replayedRecords(40_000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source.slice(0, 1000), {
    log,
  });
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
  });
  try {
    // The rest arrives while the database crashes and comes back.
    const publishing = (async () => {
      for (let i = 1000; i < source.length; i += 1000) {
        await publishRecords(
          kafka,
          config.KAFKA_TOPIC,
          source.slice(i, i + 1000),
          { log },
        );
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    for (let crashes = 0, seen = 0; crashes < 3; crashes++) {
      // Crash while batches are being committed, then restart after a short outage.
      await eventually(async () => (await count()) > seen + 2000, 60_000, 20);
      await crash(`${dir}/services/pg`);
      await new Promise((r) => setTimeout(r, 500));
      await services("start-pg");
      seen = await eventually(() => count().catch(() => 0), 30_000);
    }
    await publishing;
    // Caught up: every offset committed. A commit the crash undid would now be a missing row.
    await eventually(
      async () => (await consumer.lag()).total_lag === "0",
      120_000,
    );
    assert.ok(consumer.stats.dbErrors > 0, "the crashes failed some writes");
    await assertMatchesSource(reader, source);
  } finally {
    controller.abort();
    await consumer.close();
    await reader.end({ timeout: 5 });
    await services("stop-pg").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
