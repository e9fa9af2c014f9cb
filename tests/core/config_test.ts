import assert from "node:assert/strict";
import { loadConfig, redactUrl } from "../../lib/core/config.ts";
import { ConfigError } from "../../lib/core/errors.ts";
import { parseFlags } from "../../lib/core/cli.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

Deno.test("loadConfig() applies the documented defaults", () => {
  const c = loadConfig({});
  assert.equal(c.KAFKA_TOPIC, "wiki.recentchanges");
  assert.equal(c.KAFKA_GROUP_ID, "wikistream-pg");
  assert.deepEqual(c.WIKIS, ["en.wikipedia.org"]);
  assert.equal(c.MEDIAWIKI_API_URL, "https://{host}/w/api.php");
  assert.equal(c.HTTP_HOST, "127.0.0.1");
  assert.match(c.USER_AGENT, /^wikistream\/\S+ \(.+\)/);
  assert.ok(Object.isFrozen(c));
});

Deno.test("loadConfig() splits comma-separated lists", () => {
  const c = loadConfig({
    WIKIS: "en.wikipedia.org, de.wikipedia.org,www.wikidata.org",
    KAFKA_BROKERS: "a:1,b:2",
  });
  assert.deepEqual(c.WIKIS, [
    "en.wikipedia.org",
    "de.wikipedia.org",
    "www.wikidata.org",
  ]);
  assert.deepEqual(c.KAFKA_BROKERS, ["a:1", "b:2"]);
});

Deno.test("loadConfig() names each bad variable", async (t) => {
  const bad: Record<string, string> = {
    KAFKA_BROKERS: "not a host",
    KAFKA_TOPIC: "bad topic!",
    DATABASE_URL: "mysql://x",
    WIKIS: ",",
    MEDIAWIKI_API_URL: "https://example.org/w/api.php",
    POLL_INTERVAL_MS: "soon",
    POLL_OVERLAP_SECONDS: "-1",
    HTTP_PORT: "70000",
    LOG_LEVEL: "loud",
    USER_AGENT: "x",
  };
  for (const [name, value] of Object.entries(bad)) {
    await t.step(name, () => {
      assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, new RegExp(`Invalid configuration: ${name}`));
        return true;
      });
    });
  }
});

Deno.test("loadConfig() never echoes a bad DATABASE_URL's password", () => {
  const err = (() => {
    try {
      loadConfig({ DATABASE_URL: "mysql://u:hunter2@db/x" });
    } catch (e) {
      return e as Error;
    }
  })();
  assert.ok(err);
  assert.ok(!err.message.includes("hunter2"));
});

Deno.test("redactUrl() hides the password and query", () => {
  assert.equal(
    redactUrl("postgres://u:secret@h:5432/db?sslmode=require"),
    "postgres://u:***@h:5432/db",
  );
});

Deno.test("parseFlags() validates --since, --until and --idle-exit", () => {
  assert.deepEqual(
    parseFlags(["--since", "2024-04-26T00:00:00Z"], ["since", "until"]),
    { since: "2024-04-26T00:00:00.000Z" },
  );
  assert.deepEqual(parseFlags(["--idle-exit", "5"], ["idleExitMs"]), {
    idleExitMs: 5000,
  });
  assert.throws(
    () => parseFlags(["--since", "yesterday"], ["since"]),
    ConfigError,
  );
  assert.throws(
    () => parseFlags(["--idle-exit", "5"], ["since"]),
    /not accepted/,
  );
  assert.throws(() => parseFlags(["--bogus"], ["since"]), ConfigError);
  assert.throws(
    () =>
      parseFlags([
        "--since",
        "2024-02-01T00:00:00Z",
        "--until",
        "2024-01-01T00:00:00Z",
      ], ["since", "until"]),
    /after/,
  );
});

Deno.test("loadConfig() resolves the Kafka security settings", () => {
  const c = loadConfig({
    KAFKA_SSL: "true",
    KAFKA_SASL_MECHANISM: "scram-sha-512",
    KAFKA_SASL_USERNAME: "u",
    KAFKA_SASL_PASSWORD: "p",
  });
  assert.equal(c.KAFKA_SSL, true);
  assert.equal(c.KAFKA_SASL_MECHANISM, "scram-sha-512");
  assert.equal(loadConfig({}).KAFKA_SSL, false);
  assert.equal(loadConfig({}).KAFKA_SASL_MECHANISM, "none");
});

Deno.test("loadConfig() names the missing SASL credential without echoing the other", async (t) => {
  const cases: [Record<string, string>, string][] = [
    [
      { KAFKA_SASL_MECHANISM: "plain", KAFKA_SASL_PASSWORD: "s3cr3t!" },
      "KAFKA_SASL_USERNAME",
    ],
    [
      { KAFKA_SASL_MECHANISM: "scram-sha-256", KAFKA_SASL_USERNAME: "u" },
      "KAFKA_SASL_PASSWORD",
    ],
    [{ KAFKA_SASL_PASSWORD: "s3cr3t!" }, "KAFKA_SASL_PASSWORD"],
    [{ KAFKA_SSL_CA_FILE: "/nonexistent/ca.pem" }, "KAFKA_SSL_CA_FILE"],
    [
      { KAFKA_SSL: "true", KAFKA_SSL_CA_FILE: "/nonexistent/ca.pem" },
      "KAFKA_SSL_CA_FILE",
    ],
  ];
  for (const [env, name] of cases) {
    await t.step(`${name} (${Object.keys(env).join(", ")})`, () => {
      assert.throws(() => loadConfig(env), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, new RegExp(`Invalid configuration: ${name}`));
        assert.ok(!err.message.includes("s3cr3t!"), err.message);
        return true;
      });
    });
  }
});

Deno.test("loadConfig() reads REDACT_DELETED_PAGES as true or false only", () => {
  assert.equal(loadConfig({}).REDACT_DELETED_PAGES, false);
  assert.equal(
    loadConfig({ REDACT_DELETED_PAGES: "true" }).REDACT_DELETED_PAGES,
    true,
  );
  assert.throws(
    () => loadConfig({ REDACT_DELETED_PAGES: "yes" }),
    (e: Error) =>
      e instanceof ConfigError && e.message.includes("REDACT_DELETED_PAGES"),
  );
});
