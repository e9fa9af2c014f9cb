/** parseFlags(): the flags of `dlq:replay` (reasons, limit, booleans) and where they are refused. */
import assert from "node:assert/strict";
import { parseFlags } from "../../lib/core/cli.ts";
import { ConfigError } from "../../lib/core/errors.ts";

const REPLAY = [
  "reasons",
  "since",
  "until",
  "limit",
  "dryRun",
  "includeReplayed",
] as const;

Deno.test("parseFlags() takes --reason repeated and comma-separated, each reason once", () => {
  assert.deepEqual(
    parseFlags([
      "--reason",
      "not_json,database_rejected",
      "--reason=bad_row",
      "--reason",
      "not_json",
    ], [...REPLAY]),
    { reasons: ["not_json", "database_rejected", "bad_row"] },
  );
});

Deno.test("parseFlags() refuses an unknown or empty --reason, naming the known ones", async (t) => {
  for (const value of ["nonsense", "", ","]) {
    await t.step(JSON.stringify(value), () => {
      assert.throws(
        () => parseFlags(["--reason", value], [...REPLAY]),
        (err: unknown) =>
          err instanceof ConfigError &&
          /^Invalid flag --reason: .*database_rejected, empty, too_large/.test(
            err.message,
          ),
      );
    });
  }
});

Deno.test("parseFlags() takes --limit as an integer >= 1 and the replay's booleans", () => {
  assert.deepEqual(
    parseFlags(["--limit", "25", "--dry-run", "--include-replayed"], [
      ...REPLAY,
    ]),
    { limit: 25, dryRun: true, includeReplayed: true },
  );
  for (const bad of ["0", "-1", "1.5", "x", "1e3"]) {
    assert.throws(
      () => parseFlags([`--limit=${bad}`], [...REPLAY]),
      /Invalid flag --limit: expected an integer >= 1/,
    );
  }
});

Deno.test("parseFlags() refuses the replay's flags on other commands", () => {
  for (const flag of ["--reason=not_json", "--limit=1", "--dry-run"]) {
    assert.throws(
      () => parseFlags([flag], ["since", "until"]),
      /is not accepted here/,
    );
  }
});

Deno.test("parseFlags() takes --since/--until as a UTC date or a time with its offset, nothing looser", () => {
  assert.deepEqual(parseFlags(["--since", "2024-04-26"], ["since"]), {
    since: "2024-04-26T00:00:00.000Z",
  });
  assert.deepEqual(
    parseFlags(["--since", "2024-04-26T02:00:00+02:00"], ["since"]),
    { since: "2024-04-26T00:00:00.000Z" },
  );
  for (
    const bad of [
      "2024-04-26T00:00:00", // no offset: would depend on the machine's zone
      "2024-02-30T00:00:00Z",
      "2024-04-26T24:00:00Z",
      "2024-04-26 00:00:00Z",
      "yesterday",
    ]
  ) {
    assert.throws(
      () => parseFlags([`--since=${bad}`], ["since"]),
      /Invalid flag --since: expected an ISO-8601 date or a time with its offset/,
      bad,
    );
  }
});
