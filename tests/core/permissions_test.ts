/** deno.json's task permissions and permissionFlags(): scoped, and in step with the config schema. */
import assert from "node:assert/strict";
import { permissionFlags } from "../../lib/core/permissions.ts";
import { CONFIG_KEYS } from "../../lib/schemas/config.ts";

const TASKS = JSON.parse(
  Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
).tasks as Record<string, { command: string }>;

/** The flags of the outer `deno run` (the `$(...)` part taken out). */
function outerFlags(task: string): string[] {
  return TASKS[task]!.command.replace(/\$\([^)]*\)/g, "").split(/\s+/)
    .filter((w) => w.startsWith("-"));
}

Deno.test("the pipeline's tasks grant env to the config schema's variables only", async (t) => {
  const want = [...CONFIG_KEYS, "NODE_ENV"].sort(); // NODE_ENV: read by kafkajs
  for (
    const task of [
      "produce",
      "consume",
      "migrate",
      "retention",
      "audit",
      "dlq:replay",
      "start",
    ]
  ) {
    await t.step(task, () => {
      const flags = outerFlags(task);
      const env = flags.find((f) => f.startsWith("--allow-env="));
      assert.ok(env, `${task} has no scoped --allow-env`);
      assert.deepEqual(
        env.slice("--allow-env=".length).split(",").sort(),
        want,
      );
      assert.ok(flags.includes("--ignore-env"), "others read as unset");
    });
  }
});

Deno.test("the pipeline's tasks grant nothing unscoped and run only services.sh", async (t) => {
  for (
    const task of [
      "produce",
      "consume",
      "migrate",
      "retention",
      "dlq:replay",
      "start",
      "fake-wiki",
    ]
  ) {
    await t.step(task, () => {
      const flags = outerFlags(task);
      for (const f of flags) {
        assert.doesNotMatch(
          f,
          /^(-A|--allow-all|--allow-(net|read|env|run|write|sys|ffi))$/,
          f,
        );
        assert.doesNotMatch(f, /^--allow-(write|sys|ffi)/, f);
      }
      const run = flags.filter((f) => f.startsWith("--allow-run"));
      assert.deepEqual(
        run,
        task === "start" ? ["--allow-run=./scripts/services.sh"] : [],
      );
      if (task !== "fake-wiki") {
        assert.match(
          TASKS[task]!.command,
          /\$\(deno run --allow-env=[A-Z_,]+ --ignore-env scripts\/permissions\.ts [\w:]+\)/,
        );
      }
    });
  }
});

Deno.test("permissionFlags() names the configured hosts and CA files, per task", async (t) => {
  const env = {
    KAFKA_BROKERS: "k1.example:9093,k2.example",
    DATABASE_URL:
      "postgres://u:p@db.example:6543/x?sslmode=verify-full&sslrootcert=/etc/ws/pg-ca.pem",
    WIKIS: "en.wikipedia.org,de.wikipedia.org",
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: "9000",
    PRODUCER_HTTP_PORT: "9001",
    KAFKA_SSL: "true",
    KAFKA_SSL_CA_FILE: "/etc/ws/kafka-ca.pem",
  };
  await t.step("consume", () => {
    assert.deepEqual(permissionFlags("consume", env), [
      "--allow-net=k1.example:9093,k2.example:9092,db.example:6543,127.0.0.1:9000",
      "--allow-read=.,/etc/ws/kafka-ca.pem,/etc/ws/pg-ca.pem",
    ]);
  });
  await t.step("produce", () => {
    assert.deepEqual(
      permissionFlags("produce", env)[0],
      "--allow-net=k1.example:9093,k2.example:9092,en.wikipedia.org:443,de.wikipedia.org:443,127.0.0.1:9001",
    );
  });
  await t.step("migrate", () => {
    assert.deepEqual(
      permissionFlags("migrate", env)[0],
      "--allow-net=db.example:6543",
    );
  });
  await t.step("dlq:replay (the database only: nothing goes to Kafka)", () => {
    assert.deepEqual(permissionFlags("dlq:replay", env), [
      "--allow-net=db.example:6543",
      "--allow-read=.,/etc/ws/kafka-ca.pem,/etc/ws/pg-ca.pem",
    ]);
  });
  await t.step("eventstreams and extra hosts", () => {
    assert.deepEqual(
      permissionFlags("produce", {
        ...env,
        SOURCE: "eventstreams",
        WIKIS: "*",
        ALLOW_NET_EXTRA: "*.brokers.example:9092",
      })[0],
      "--allow-net=k1.example:9093,k2.example:9092,stream.wikimedia.org:443,127.0.0.1:9001,*.brokers.example:9092",
    );
  });
  await t.step("start falls back to the local services' ports", () => {
    assert.match(
      permissionFlags("start", {
        WIKISTREAM_KAFKA_PORT: "26092",
        WIKISTREAM_PG_PORT: "26432",
      })[0]!,
      /^--allow-net=127\.0\.0\.1:26092,127\.0\.0\.1:26432,en\.wikipedia\.org:443,127\.0\.0\.1:8080$/,
    );
  });
  await t.step(
    "a bad configuration gives no flags (the task reports it)",
    () => {
      assert.deepEqual(
        permissionFlags("consume", { KAFKA_BROKERS: "bad host" }),
        [],
      );
    },
  );
});
