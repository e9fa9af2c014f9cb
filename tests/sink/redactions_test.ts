/** redactionsOf(): what the log rows ask for, from every parameter shape MediaWiki writes. */
import assert from "node:assert/strict";
import { redactionsOf } from "../../lib/sink/redactions.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import type { ChangeRow } from "../../lib/source/normalise.ts";
import type { ReplayedRecord } from "../integration/_consumer_fixture.ts";
import {
  apiRecord,
  apiRow,
  apiSuppression,
  logEntryDeletion,
  revisionDeletion,
  streamEvent,
  streamRecord,
} from "../integration/_redaction_inputs.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

function rowOf(record: ReplayedRecord): ChangeRow {
  return decodeValue(new TextEncoder().encode(record.value));
}

const EN = "en.wikipedia.org";

Deno.test("redactionsOf() reads a stream delete/revision (rc_params without N:: prefixes)", () => {
  const edit = streamEvent(1769695958);
  const e = revisionDeletion(edit, {
    revId: 1220798182,
    nfield: 6,
    rcid: 1,
    logId: 7,
    at: 1714089700,
  });
  assert.deepEqual(redactionsOf([rowOf(streamRecord(e))]), {
    visibility: [{
      wiki: "enwiki",
      target: "revision",
      target_id: "1220798182",
      hidden: 6,
      log_id: "7",
      redacted_at: "2024-04-26T00:01:40.000Z",
    }],
    pages: [],
  });
});

Deno.test("redactionsOf() reads an fv2 API suppress/revision (old/new bitmasks)", () => {
  const edit = apiRow("enwiki", 672726006);
  const row = apiSuppression(edit, {
    revId: 619586846,
    bitmask: 13,
    rcid: 2,
    logId: 8,
    at: "2014-08-02T20:00:00Z",
  });
  const { visibility } = redactionsOf([rowOf(apiRecord(row, "enwiki", EN))]);
  assert.deepEqual(visibility.map((v) => [v.target, v.target_id, v.hidden]), [[
    "revision",
    "619586846",
    13,
  ]]);
});

Deno.test("redactionsOf() reads legacy positional parameters (fv1 inline keys)", () => {
  const row = {
    ...apiRow("enwiki", 616263547),
    rcid: 3,
    logaction: "revision",
    "0": "revision",
    "1": "619586846,619586599",
    "2": "ofield=0",
    "3": "nfield=2",
  };
  const { visibility } = redactionsOf([rowOf(apiRecord(row, "enwiki", EN))]);
  assert.deepEqual(visibility.map((v) => [v.target_id, v.hidden]), [[
    "619586846",
    2,
  ], ["619586599", 2]]);
});

Deno.test("redactionsOf() reads a delete/event as a log entry target", () => {
  const entry = streamEvent(1769695961);
  const e = logEntryDeletion(entry, {
    nfield: 3,
    rcid: 4,
    logId: 9,
    at: 1714089700,
  });
  const { visibility } = redactionsOf([rowOf(streamRecord(e))]);
  assert.deepEqual(visibility.map((v) => [v.target, v.target_id, v.hidden]), [[
    "logging",
    "161650906",
    3,
  ]]);
});

Deno.test("redactionsOf() skips what it cannot apply and keeps nothing half-read", async (t) => {
  const edit = streamEvent(1769695958);
  const base = revisionDeletion(edit, {
    revId: 1220798182,
    nfield: 6,
    rcid: 1,
    logId: 7,
    at: 1714089700,
  });
  const cases: [string, unknown][] = [
    ["archive (revisions of a deleted page)", {
      type: "archive",
      ids: ["1"],
      ofield: "0",
      nfield: "1",
    }],
    ["unhide (nfield 0)", {
      type: "revision",
      ids: ["1"],
      ofield: "6",
      nfield: "0",
    }],
    ["no bitfield", { type: "revision", ids: ["1"] }],
    ["bitfield out of range", { type: "revision", ids: ["1"], nfield: "99" }],
    ["no ids", { type: "revision", ids: [], nfield: "6" }],
    ["bad ids", { type: "revision", ids: ["x", "-1"], nfield: "6" }],
    ["empty (PHP [])", []],
  ];
  for (const [name, params] of cases) {
    await t.step(name, () => {
      const row = rowOf(streamRecord({ ...base, log_params: params }));
      assert.deepEqual(redactionsOf([row]), { visibility: [], pages: [] });
    });
  }
});

Deno.test("redactionsOf() reads recorded page deletions and restores from both sources", () => {
  const rows = [
    rowOf(streamRecord(streamEvent(1769695961))),
    rowOf(apiRecord(apiRow("enwiki", 616263547), "enwiki", EN)),
    rowOf(apiRecord(apiRow("enwiki", 616228397), "enwiki", EN)),
    rowOf(streamRecord(streamEvent(1769695958))), // an edit: nothing
  ];
  assert.deepEqual(redactionsOf(rows).pages, [
    {
      wiki: "enwiki",
      title:
        "Category talk:Replaceable non-free use to be decided after 25 April 2024",
      action: "delete",
      log_id: "161650906",
      event_time: "2024-04-26T00:00:53.000Z",
    },
    {
      wiki: "enwiki",
      title: "Category talk:Joe songs",
      action: "delete",
      log_id: "52556251",
      event_time: "2013-11-12T01:29:06.000Z",
    },
    {
      wiki: "enwiki",
      title: "User talk:Envisage Drawn",
      action: "restore",
      log_id: "52553202",
      event_time: "2013-11-11T22:01:52.000Z",
    },
  ]);
});
