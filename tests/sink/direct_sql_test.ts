import assert from "node:assert/strict";
import { activityJson, directEarliest } from "../../lib/sink/_direct_sql.ts";
import type { SinkRow } from "../../lib/sink/sink.ts";

const row = (rcid: string, event_time: string, more: Partial<SinkRow> = {}) =>
  ({
    wiki: "lvwiki",
    rcid,
    event_time,
    change_type: "edit",
    namespace: 0,
    is_bot: false,
    is_anon: false,
    old_len: 10,
    new_len: 4,
    kafka_partition: 0,
    kafka_offset: "0",
    ...more,
  }) as SinkRow;

Deno.test("directEarliest() gives the earliest time of new-looking rows, null when the merge must decide", () => {
  assert.equal(
    directEarliest([
      row("2", "2024-01-01T00:00:01.500Z"),
      row("1", "2024-01-01T00:00:01Z"),
    ]),
    "2024-01-01T00:00:01.000Z",
  );
  assert.equal(directEarliest([]), null);
  // One change twice, rcid compared as a number.
  assert.equal(
    directEarliest([
      row("123", "2024-01-01T00:00:00Z"),
      row("0123", "2024-01-01T00:00:00Z"),
    ]),
    null,
  );
  // The same rcid on another wiki is another change.
  assert.notEqual(
    directEarliest([
      row("5", "2024-01-01T00:00:00Z"),
      row("5", "2024-01-01T00:00:00Z", { wiki: "enwiki" }),
    ]),
    null,
  );
  for (
    const t of [
      "2016-12-31T23:59:60Z", // a leap second: PostgreSQL rolls it into the next minute
      "2024-02-30T00:00:00Z",
      "2024-01-01T00:00:00+01:00",
      "+012024-01-01T00:00:00.000Z",
      "2024-01-01 00:00:00Z",
      "2024-01-01T00:00:59.9999996Z", // timestamptz rounds it into the next minute
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z", // not a leap year
      "2024-04-31T00:00:00Z",
      "2024-13-01T00:00:00Z",
      "2024-00-10T00:00:00Z",
      "2024-01-00T00:00:00Z",
      "2024-01-01T24:00:00Z", // Date reads it as the next day
      "2024-01-01T23:60:00Z",
      "0000-01-01T00:00:00Z",
    ]
  ) assert.equal(directEarliest([row("1", t)]), null, t);
  // The same, after a valid time of the same minute (whose minute is then known good).
  assert.equal(
    directEarliest([
      row("1", "2016-12-31T23:59:59Z"),
      row("2", "2016-12-31T23:59:60Z"),
    ]),
    null,
  );
  assert.equal(
    directEarliest([
      row("1", "2016-12-31T23:59:00Z"),
      row("2", "2016-12-31T23:59:59.999999Z"),
    ]),
    "2016-12-31T23:59:00.000Z",
  );
  for (
    const t of [
      "2024-02-29T23:59:59Z",
      "2000-02-29T00:00:00Z",
      "2024-04-30T00:00:00Z",
      "2024-12-31T23:59:59.999999Z",
      "0001-01-01T00:00:00Z",
    ]
  ) {
    assert.equal(
      directEarliest([row("1", t)]),
      new Date(Date.parse(t)).toISOString(),
      t,
    );
  }
  // Microseconds are kept as they are.
  assert.equal(
    directEarliest([row("1", "2024-01-01T00:00:59.999999Z")]),
    "2024-01-01T00:00:59.999Z",
  );
});

Deno.test("activityJson() counts per wiki, UTC minute and namespace as the merge's COUNTS does", () => {
  const groups = JSON.parse(activityJson([
    row("1", "2024-01-01T10:00:59.900Z", { is_bot: true }),
    row("2", "2024-01-01T10:00:00Z", {
      change_type: "new",
      old_len: null,
      new_len: 7,
    }),
    row("3", "2024-01-01T10:01:00Z", { change_type: "log", namespace: null }),
  ]));
  assert.deepEqual(groups, [
    {
      wiki: "lvwiki",
      minute: "2024-01-01T10:00:00Z",
      namespace: 0,
      changes: 2,
      edits: 1,
      new_pages: 1,
      log_events: 0,
      categorize: 0,
      bot_changes: 1,
      anon_changes: 0,
      bytes_added: 7,
      bytes_removed: 6,
    },
    {
      wiki: "lvwiki",
      minute: "2024-01-01T10:01:00Z",
      namespace: -1,
      changes: 1,
      edits: 0,
      new_pages: 0,
      log_events: 1,
      categorize: 0,
      bot_changes: 0,
      anon_changes: 0,
      bytes_added: 0,
      bytes_removed: 0,
    },
  ]);
});
