/** Bad configuration of every variable: producer.ts and consumer.ts exit 2 naming the variable. */
import assert from "node:assert/strict";
import { CONFIG_KEYS } from "../../lib/schemas/config.ts";
import { taskArgs, taskOf } from "../_task.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** One invalid value per variable. */
const BAD: Record<string, string> = {
  KAFKA_BROKERS: "broker one:9092",
  KAFKA_TOPIC: "bad/topic",
  KAFKA_PARTITIONS: "0",
  KAFKA_SSL: "yes",
  REDACT_DELETED_PAGES: "yes",
  RETENTION_DAYS: "0",
  KAFKA_SSL_CA_FILE: "/nonexistent/ca.pem",
  KAFKA_SASL_MECHANISM: "gssapi",
  // Credentials without a mechanism would silently connect unauthenticated.
  KAFKA_SASL_USERNAME: "alice",
  KAFKA_SASL_PASSWORD: "alice-secret",
  DATABASE_URL: "mysql://127.0.0.1/wiki",
  WIKIS: "en.wikipedia.org,not a host",
  SOURCE: "irc",
  EVENTSTREAMS_URL: "not a url",
  MEDIAWIKI_API_URL: "http://127.0.0.1/w/api.php",
  POLL_INTERVAL_MS: "5",
  POLL_OVERLAP_SECONDS: "-1",
  RECONCILE_WINDOW_SECONDS: "6h",
  RECONCILE_INTERVAL_SECONDS: "0",
  HTTP_TIMEOUT_MS: "soon",
  USER_AGENT: "short",
  HTTP_AUTH_TOKEN: "short",
  ALLOW_NET_EXTRA: "a host with spaces",
  HTTP_PORT: "70000",
  PRODUCER_HTTP_PORT: "-1",
  HEALTH_STALL_SECONDS: "0",
  LOG_LEVEL: "verbose",
  LOG_FORMAT: "fancy",
};

/** Free-form names: any non-empty string is valid and an empty one means the default. */
const FREE_FORM = [
  "KAFKA_CLIENT_ID",
  "KAFKA_GROUP_ID",
  "KAFKA_TRANSACTIONAL_ID",
  "HTTP_HOST",
];

/** Runs `entry` as its task does (scoped permissions): a bad value must still exit 2. */
async function run(entry: string, env: Record<string, string>) {
  const full = {
    // Nothing listens there: a process that got past config would fail differently.
    KAFKA_BROKERS: "127.0.0.1:1",
    DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
    HTTP_PORT: "0",
    PRODUCER_HTTP_PORT: "0",
    ...env,
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: await taskArgs(taskOf(entry), full),
    cwd: ROOT,
    env: full,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("every config variable has a bad-value case or is free-form", () => {
  const covered = new Set([...Object.keys(BAD), ...FREE_FORM]);
  assert.deepEqual(CONFIG_KEYS.filter((k) => !covered.has(k)), []);
});

for (const entry of ["producer.ts", "consumer.ts"]) {
  Deno.test(`${entry} exits 2 naming each badly configured variable`, async (t) => {
    const cases = [
      ...Object.entries(BAD).map(([k, v]) => ({ name: k, env: { [k]: v } })),
      { name: "WIKIS", env: { WIKIS: "*", SOURCE: "api" } },
      {
        name: "KAFKA_SSL_CA_FILE",
        env: { KAFKA_SSL: "true", KAFKA_SSL_CA_FILE: "/nonexistent/ca.pem" },
      },
      {
        name: "KAFKA_SASL_USERNAME",
        env: { KAFKA_SASL_MECHANISM: "plain", KAFKA_SASL_PASSWORD: "p" },
      },
      {
        name: "KAFKA_SASL_PASSWORD",
        env: {
          KAFKA_SASL_MECHANISM: "scram-sha-256",
          KAFKA_SASL_USERNAME: "u",
        },
      },
    ];
    // Four at a time: each is a fresh Deno process.
    const results = new Map<string, { code: number; text: string }>();
    for (let i = 0; i < cases.length; i += 4) {
      const chunk = cases.slice(i, i + 4);
      const outs = await Promise.all(chunk.map((c) => run(entry, c.env)));
      chunk.forEach((c, j) =>
        results.set(`${c.name}=${Object.values(c.env).join(",")}`, outs[j]!)
      );
    }
    for (const [label, { code, text }] of results) {
      const name = label.split("=")[0]!;
      await t.step(label, () => {
        assert.equal(code, 2, text);
        assert.ok(text.includes(name), `output names ${name}: ${text}`);
        assert.ok(text.includes("ConfigError"), text);
        assert.ok(!text.includes("alice-secret"), `password echoed: ${text}`);
      });
    }
  });
}
