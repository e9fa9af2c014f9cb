/**
 * Secure connections for real: a throwaway CA (openssl), an Apache Kafka of its own with SSL and
 * SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) listeners and a PostgreSQL of its own with
 * ssl=on and password authentication, on loopback ports of their own (scripts/services.sh with
 * WIKISTREAM_KAFKA_EXTRA_PROPS, WIKISTREAM_KAFKA_SCRAM and WIKISTREAM_PG_SSL_DIR). A round trip
 * through the project's producer and consumer runs over TLS, and failing connections (wrong
 * passwords) are checked to leak no password into logs, errors or process output.
 */
import assert from "node:assert/strict";
import { startProducer } from "../../lib/pipeline/producer.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka, kafkaSecurity } from "../../lib/kafka/client.ts";
import { ensureTopics } from "../../lib/kafka/topics.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { serializeError } from "../../lib/core/log.ts";
import {
  loadRecordedWikis,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";
import { freePortRange } from "../_ports.ts";
import { adminUrl } from "../_pg_admin.ts";
import { taskArgs, taskOf } from "../_task.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
// Free ports, so the suite runs beside the user's own services.
const KAFKA_PORT = freePortRange(4); // PLAINTEXT (the script's readiness check); the controller takes +1
const SSL_PORT = KAFKA_PORT + 2;
const SASL_SSL_PORT = KAFKA_PORT + 3;
const PG_PORT = freePortRange(1);

// The passwords every output is searched for.
const PLAIN_PW = "plain-Pw-7f3a91";
const SCRAM256_PW = "scram256-Pw-c0ffee";
const SCRAM512_PW = "scram512-Pw-b16b00";
const PG_PW = "pg-Pw-5e1f0d";
const WRONG_KAFKA_PW = "wrong-kafka-Pw-42x";
const WRONG_PG_PW = "wrong-pg-Pw-43y";
const SECRETS = [
  PLAIN_PW,
  SCRAM256_PW,
  SCRAM512_PW,
  PG_PW,
  WRONG_KAFKA_PW,
  WRONG_PG_PW,
];

const SINCE = "2013-01-01T00:00:00Z";
const UNTIL = "2021-01-01T00:00:00Z";

Deno.test("Kafka over TLS and SASL_SSL and PostgreSQL with sslmode=verify-full carry the pipeline, and no password leaks", async (t) => {
  for (
    const port of [KAFKA_PORT, KAFKA_PORT + 1, SSL_PORT, SASL_SSL_PORT, PG_PORT]
  ) {
    assert.ok(!(await portOpen(port)), `port ${port} is already in use`);
  }
  const dir = await Deno.makeTempDir({ prefix: "wikistream-tls-" });
  // The postgres system user must reach the data folder inside it.
  await Deno.chmod(dir, 0o755);
  const env = {
    WIKISTREAM_KAFKA_PORT: String(KAFKA_PORT),
    WIKISTREAM_PG_PORT: String(PG_PORT),
    WIKISTREAM_SERVICES_DIR: `${dir}/services`,
    WIKISTREAM_KAFKA_EXTRA_PROPS: `${dir}/kafka-extra.properties`,
    WIKISTREAM_KAFKA_SCRAM: `SCRAM-SHA-256=[name=bob,password=${SCRAM256_PW}]` +
      ` SCRAM-SHA-512=[name=carol,password=${SCRAM512_PW}]`,
    WIKISTREAM_PG_SSL_DIR: `${dir}/pg-tls`,
  };
  try {
    await makeCertificates(dir);
    await Deno.writeTextFile(env.WIKISTREAM_KAFKA_EXTRA_PROPS, kafkaProps(dir));
    await sh("bash", [`${ROOT}scripts/services.sh`, "start"], env);
    await preparePostgres(dir, env);
    const ca = `${dir}/ca.crt`;
    const dbUrl = (pw: string, host = "localhost") =>
      `postgres://app:${pw}@${host}:${PG_PORT}/app_db?sslmode=verify-full&sslrootcert=${ca}`;
    const scram256 = {
      KAFKA_BROKERS: `127.0.0.1:${SASL_SSL_PORT}`,
      KAFKA_SSL: "true",
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SASL_MECHANISM: "scram-sha-256",
      KAFKA_SASL_USERNAME: "bob",
      KAFKA_SASL_PASSWORD: SCRAM256_PW,
      DATABASE_URL: dbUrl(PG_PW),
    };

    await t.step(
      "PostgreSQL: verify-full with sslrootcert connects over TLS",
      async () => {
        const sql = connectDb(dbUrl(PG_PW), { max: 1 });
        try {
          const rows = await eventually(() =>
            sql`select ssl, version from pg_stat_ssl where pid = pg_backend_pid()`
          );
          const row = rows[0] as { ssl: boolean; version: string } | undefined;
          assert.equal(row!.ssl, true);
          assert.match(String(row!.version), /^TLSv1\.[23]$/);
        } finally {
          await sql.end({ timeout: 5 });
        }
      },
    );

    await t.step(
      "PostgreSQL: verify-full checks the host name and the CA",
      async () => {
        // The server certificate names only `localhost`.
        for (
          const url of [
            dbUrl(PG_PW, "127.0.0.1"),
            `postgres://app:${PG_PW}@localhost:${PG_PORT}/app_db?sslmode=verify-full`,
            `postgres://app:${PG_PW}@localhost:${PG_PORT}/app_db?sslmode=disable`,
          ]
        ) {
          const sql = connectDb(url, { max: 1 });
          try {
            await assert.rejects(sql`select 1`);
          } finally {
            await sql.end({ timeout: 5 });
          }
        }
        // verify-ca checks the chain only, as libpq does.
        const sql = connectDb(
          `postgres://app:${PG_PW}@127.0.0.1:${PG_PORT}/app_db?sslmode=verify-ca&sslrootcert=${ca}`,
          { max: 1 },
        );
        try {
          assert.deepEqual([...await sql`select 1 as one`], [{ one: 1 }]);
        } finally {
          await sql.end({ timeout: 5 });
        }
      },
    );

    await t.step(
      "Kafka: SSL, SASL PLAIN and SASL SCRAM-SHA-512 listeners accept the client",
      async () => {
        const cases: Record<string, string>[] = [
          {
            KAFKA_BROKERS: `127.0.0.1:${SSL_PORT}`,
            KAFKA_SSL: "true",
            KAFKA_SSL_CA_FILE: ca,
          },
          {
            ...scram256,
            KAFKA_SASL_MECHANISM: "plain",
            KAFKA_SASL_USERNAME: "alice",
            KAFKA_SASL_PASSWORD: PLAIN_PW,
          },
          {
            ...scram256,
            KAFKA_SASL_MECHANISM: "scram-sha-512",
            KAFKA_SASL_USERNAME: "carol",
            KAFKA_SASL_PASSWORD: SCRAM512_PW,
          },
        ];
        for (const overrides of cases) {
          const config = testConfig(overrides);
          const log = captureLogger("warn");
          const kafka = createKafka({
            brokers: config.KAFKA_BROKERS,
            clientId: config.KAFKA_CLIENT_ID,
            log,
            ...kafkaSecurity(config),
          });
          await ensureTopics(kafka, [{
            topic: config.KAFKA_TOPIC,
            partitions: 1,
          }]);
          const admin = kafka.admin();
          await admin.connect();
          try {
            assert.ok((await admin.listTopics()).includes(config.KAFKA_TOPIC));
          } finally {
            await admin.disconnect();
          }
          assertNoSecret(
            JSON.stringify(log.lines),
            overrides.KAFKA_SASL_MECHANISM ?? "ssl",
          );
        }
      },
    );

    await t.step(
      "the pipeline runs over SASL_SSL (SCRAM-SHA-256) and verify-full",
      async () => {
        const wikis = loadRecordedWikis();
        await using fake = startFakeMediaWiki({ wikis, pageSize: 7 });
        const config = testConfig({
          ...scram256,
          MEDIAWIKI_API_URL: fake.urlTemplate,
          WIKIS: wikis.map((w) => w.host).join(","),
        });
        await using db = await tempSchema(config, {
          adminUrl: `${await adminUrl(env)}?sslmode=require`,
        });
        const log = captureLogger("debug");
        const producer = await startProducer(config, {
          log,
          signal: new AbortController().signal,
          since: SINCE,
          until: UNTIL,
        });
        await producer.done;
        await producer.close();
        const consumer = await startConsumer(config, {
          log,
          signal: new AbortController().signal,
          idleExitMs: 1500,
          schema: db.name,
        });
        await consumer.done;
        const written = consumer.stats.written;
        await consumer.close();
        const total = wikis.reduce((n, w) => n + w.rows.length, 0);
        assert.equal(written, total);
        const [count] = await db
          .sql`select count(*)::int as n from wiki_recent_changes`;
        assert.equal(count!.n, total);
        assertNoSecret(JSON.stringify(log.lines), "pipeline logs");
      },
    );

    await t.step(
      "a wrong PostgreSQL password leaks into no log line or error",
      async () => {
        const log = captureLogger("debug");
        const config = testConfig({
          ...scram256,
          DATABASE_URL: dbUrl(WRONG_PG_PW),
        });
        const err = await startConsumer(config, {
          log,
          signal: new AbortController().signal,
        }).then(
          (c) =>
            c.close().then(() =>
              assert.fail("connected with a wrong password")
            ),
          (e: unknown) => e,
        );
        assert.match(String(err), /password authentication failed/);
        log.error("cannot start consumer", { err });
        assertNoSecret(
          errorText(err) + JSON.stringify(log.lines),
          "PostgreSQL error",
        );
      },
    );

    await t.step(
      "wrong Kafka SASL credentials leak into no log line or error",
      async () => {
        for (const mechanism of ["plain", "scram-sha-256"]) {
          const log = captureLogger("debug");
          const config = testConfig({
            ...scram256,
            KAFKA_SASL_MECHANISM: mechanism,
            KAFKA_SASL_PASSWORD: WRONG_KAFKA_PW,
          });
          const err = await startProducer(config, {
            log,
            signal: new AbortController().signal,
          }).then(
            (p) =>
              p.close().then(() =>
                assert.fail("connected with a wrong password")
              ),
            (e: unknown) => e,
          );
          assert.equal((err as Error).name, "KafkaJSSASLAuthenticationError");
          log.error("cannot start producer", { err });
          assertNoSecret(errorText(err) + JSON.stringify(log.lines), mechanism);
        }
      },
    );

    await t.step(
      "producer.ts and consumer.ts print no password when they cannot connect",
      async () => {
        await using fake = startFakeMediaWiki({ wikis: loadRecordedWikis() });
        const base = {
          ...scram256,
          MEDIAWIKI_API_URL: fake.urlTemplate,
          HTTP_PORT: "0",
          PRODUCER_HTTP_PORT: "0",
          LOG_LEVEL: "debug",
          KAFKA_TOPIC: `tls.${crypto.randomUUID().slice(0, 8)}.rc`,
        };
        const runs: [string, Record<string, string>][] = [
          ["producer.ts", { ...base, KAFKA_SASL_PASSWORD: WRONG_KAFKA_PW }],
          ["consumer.ts", { ...base, KAFKA_SASL_PASSWORD: WRONG_KAFKA_PW }],
          ["consumer.ts", { ...base, DATABASE_URL: dbUrl(WRONG_PG_PW) }],
        ];
        for (const [entry, runEnv] of runs) {
          const out = await new Deno.Command(Deno.execPath(), {
            args: await taskArgs(taskOf(entry), runEnv),
            cwd: ROOT,
            env: runEnv,
            stdout: "piped",
            stderr: "piped",
            signal: AbortSignal.timeout(60_000),
          }).output();
          const text = new TextDecoder().decode(out.stdout) +
            new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 1, text);
          assert.match(text, /authentication failed/i);
          assertNoSecret(text, entry);
        }
      },
    );
  } finally {
    await sh("bash", [`${ROOT}scripts/services.sh`, "stop"], env).catch((err) =>
      // deno-lint-ignore no-console
      console.error("cannot stop the TLS services", err)
    );
    await Deno.remove(dir, { recursive: true });
  }
});

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) {
    assert.ok(!text.includes(secret), `${where} contains a password`);
    assert.ok(
      !text.includes(encodeURIComponent(secret)),
      `${where} contains a password`,
    );
  }
}

/** Every way an error may be printed: message, stack, our serialisation, Deno.inspect. */
function errorText(err: unknown): string {
  return [
    String(err),
    (err as Error).stack ?? "",
    JSON.stringify(serializeError(err)),
    Deno.inspect(err, { depth: 6 }),
  ].join("\n");
}

async function sh(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

/** A CA; a Kafka certificate for 127.0.0.1 (PKCS#12) and a PostgreSQL one for localhost only. */
async function makeCertificates(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/pg-tls`);
  const ossl = (...args: string[]) => sh("openssl", args);
  await ossl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=wikistream test CA",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.crt`,
  );
  for (
    const [name, san] of [
      ["kafka", "IP:127.0.0.1"],
      ["pg-tls/server", "DNS:localhost"],
    ]
  ) {
    const base = `${dir}/${name}`;
    await Deno.writeTextFile(
      `${base}.ext`,
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    await ossl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${san!.split(":")[1]}`,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.csr`,
    );
    await ossl(
      "x509",
      "-req",
      "-days",
      "2",
      "-in",
      `${base}.csr`,
      "-CA",
      `${dir}/ca.crt`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-extfile",
      `${base}.ext`,
      "-out",
      `${base}.crt`,
    );
  }
  await ossl(
    "pkcs12",
    "-export",
    "-in",
    `${dir}/kafka.crt`,
    "-inkey",
    `${dir}/kafka.key`,
    "-name",
    "kafka",
    "-passout",
    "pass:keystore-pw",
    "-out",
    `${dir}/kafka.p12`,
  );
}

function kafkaProps(dir: string): string {
  const jaas = (module: string, users = "") =>
    `org.apache.kafka.common.security.${module} required${users};`;
  return [
    `listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${
      KAFKA_PORT + 1
    },SSL://127.0.0.1:${SSL_PORT},SASL_SSL://127.0.0.1:${SASL_SSL_PORT}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},SSL://127.0.0.1:${SSL_PORT},SASL_SSL://127.0.0.1:${SASL_SSL_PORT}`,
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL",
    "ssl.keystore.type=PKCS12",
    `ssl.keystore.location=${dir}/kafka.p12`,
    "ssl.keystore.password=keystore-pw",
    "ssl.key.password=keystore-pw",
    "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    `listener.name.sasl_ssl.plain.sasl.jaas.config=${
      jaas("plain.PlainLoginModule", ` user_alice="${PLAIN_PW}"`)
    }`,
    `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${
      jaas("scram.ScramLoginModule")
    }`,
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${
      jaas("scram.ScramLoginModule")
    }`,
    "",
  ].join("\n");
}

/**
 * Creates the role `app` (password PG_PW, owner of app_db) and makes the server require TLS and
 * a SCRAM password for it; other roles keep the script's password authentication.
 */
async function preparePostgres(
  dir: string,
  env: Record<string, string>,
): Promise<void> {
  const admin = connectDb(
    `${await adminUrl(env)}?sslmode=require`,
    { max: 1 },
  );
  try {
    await admin.unsafe(`create role app login password '${PG_PW}'`);
    await admin.unsafe("create database app_db owner app");
    const hba = `${dir}/services/pg/pg_hba.conf`;
    await Deno.writeTextFile(
      hba,
      "hostnossl all app 127.0.0.1/32 reject\n" +
        "hostssl all app 127.0.0.1/32 scram-sha-256\n" +
        await Deno.readTextFile(hba),
    );
    await admin`select pg_reload_conf()`;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

async function portOpen(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}
