import assert from "node:assert/strict";
import { createLogger, resolveLogFormat } from "../../lib/core/log.ts";
import { ConfigError, UpstreamError } from "../../lib/core/errors.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const NOW = () => new Date("2024-04-26T12:34:56.789Z");

function capture(format: "json" | "pretty") {
  const lines: string[] = [];
  const log = createLogger({
    service: "producer",
    format,
    now: NOW,
    write: (line) => lines.push(line),
  });
  return { log, lines };
}

Deno.test("resolveLogFormat() picks pretty on a terminal and JSON elsewhere", () => {
  assert.equal(resolveLogFormat("auto", () => true), "pretty");
  assert.equal(resolveLogFormat("auto", () => false), "json");
  assert.equal(resolveLogFormat("json", () => true), "json");
  assert.equal(resolveLogFormat("pretty", () => false), "pretty");
});

Deno.test("createLogger() pretty: time, level, who, message, then key=value fields", () => {
  const { log, lines } = capture("pretty");
  log.with({ component: "poller" }).info("published", {
    wiki: "en.wikipedia.org",
    rows: 50,
    wikis: ["a.org", "b.org"],
    note: "two words",
  });
  assert.deepEqual(lines, [
    '12:34:56 INFO  producer/poller published wiki=en.wikipedia.org rows=50 wikis=a.org,b.org note="two words"',
  ]);
});

Deno.test("createLogger() pretty shows multi-line text as real indented lines", () => {
  const { log, lines } = capture("pretty");
  const err = new ConfigError(
    "Invalid configuration: POLL_INTERVAL_MS\n✖ Invalid input: expected number, received NaN\n  → at POLL_INTERVAL_MS",
  );
  log.error(err.message, { error: "ConfigError" });
  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0]!.split("\n"), [
    "12:34:56 ERROR producer Invalid configuration: POLL_INTERVAL_MS error=ConfigError",
    "    ✖ Invalid input: expected number, received NaN",
    "      → at POLL_INTERVAL_MS",
  ]);
  assert.ok(!lines[0]!.includes("\\n"));
});

Deno.test("createLogger() pretty writes an error and its causes on one line", () => {
  const { log, lines } = capture("pretty");
  const err = new UpstreamError(
    503,
    "http",
    "Cannot fetch recent changes: status 503",
    { cause: new TypeError("fetch failed") },
  );
  log.warn("poll failed", { err, retryInMs: 2000 });
  assert.equal(
    lines[0],
    "12:34:56 WARN  producer poll failed err=UpstreamError: Cannot fetch recent changes: status 503 (code http) <- TypeError: fetch failed retryInMs=2000",
  );
});

Deno.test("createLogger() json stays one JSON object per line", () => {
  const { log, lines } = capture("json");
  log.error("bad\nthing", { n: 1n });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: "2024-04-26T12:34:56.789Z",
    level: "error",
    msg: "bad\nthing",
    service: "producer",
    n: "1",
  });
});
