/**
 * Review of the direct COPY against the merge on real PostgreSQL, for what production does and
 * direct_copy_test.ts does not: one change from both sources in different batches (either order),
 * redactions arriving before and after their rows, a wiki name and a title JSON must escape (the
 * rollup and redaction statements read them from json parameters), a session TimeZone other than
 * UTC, event times the client and PostgreSQL might bucket differently. Each scenario writes the
 * same batches through a direct sink and a merge-only sink and requires the same tables.
 */
import assert from "node:assert/strict";
import { createSink, type Sink, type SinkRow } from "../../lib/sink/sink.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import { connectDb } from "../../lib/sink/db.ts";
import type { ReplayedRecord } from "./_consumer_fixture.ts";
import {
  apiRecord,
  apiRow,
  apiSuppression,
  revisionDeletion,
  streamEventForApiRow,
  streamRecord,
} from "./_redaction_inputs.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";
import { sinkTables } from "./_direct_copy_fixture.ts";

const LV = "lv.wikipedia.org";
let offset = 0;

function rowsOf(records: ReplayedRecord[], partition = 0): SinkRow[] {
  const enc = new TextEncoder();
  return records.map((r) => ({
    ...decodeValue(enc.encode(r.value)),
    kafka_partition: partition,
    kafka_offset: String(offset++),
  }));
}

/**
 * Writes the batches through a direct sink (its session in `timeZone`) and a merge-only sink
 * (UTC), compares every result and the tables; returns how many direct COPYs were tried.
 */
async function compare(
  batches: SinkRow[][],
  options: {
    timeZone?: string;
    /** Looks at the direct sink's tables (equal to the merge's). */
    check?: (tables: Record<string, unknown[]>) => void;
  } = {},
): Promise<number> {
  const config = testConfig();
  await using a = await tempSchema(config);
  await using b = await tempSchema(config);
  await migrate(a.sql);
  await migrate(b.sql);
  let direct = 0;
  // One connection, so a session setting holds for every write.
  const sqlA = connectDb(config.DATABASE_URL, {
    schema: a.name,
    max: 1,
    onQuery: (q) => {
      if (q.startsWith("copy wiki_recent_changes")) direct++;
    },
  });
  try {
    if (options.timeZone) {
      await sqlA.unsafe(`set time zone '${options.timeZone}'`);
    }
    const log = captureLogger("warn");
    const fast: Sink = createSink(sqlA, { log });
    const merged: Sink = createSink(b.sql, { log, directCopy: false });
    for (const [i, batch] of batches.entries()) {
      const x = await fast.write(batch);
      const y = await merged.write(batch);
      assert.deepEqual(x, y, `result of batch ${i}`);
    }
    const [ta, tb] = [await sinkTables(sqlA), await sinkTables(b.sql)];
    assert.deepEqual(ta, tb);
    options.check?.(ta);
  } finally {
    await sqlA.end({ timeout: 5 });
  }
  return direct;
}

Deno.test("direct COPY: one change from both sources in different batches, either order, leaves what the merge leaves", async () => {
  const a = apiRow("lvwiki", 9235558);
  const b = apiRow("lvwiki", 9235529);
  const direct = await compare([
    rowsOf([streamRecord(streamEventForApiRow(a, "lvwiki", LV))], 0),
    rowsOf([apiRecord(b, "lvwiki", LV)], 1),
    rowsOf([apiRecord(a, "lvwiki", LV)], 1),
    rowsOf([streamRecord(streamEventForApiRow(b, "lvwiki", LV))], 0),
  ]);
  assert.ok(direct >= 2, `only ${direct} direct COPYs were tried`);
});

Deno.test("direct COPY: a revision deletion before its rows and a suppression after them leave what the merge leaves", async () => {
  const a = apiRow("lvwiki", 9235558);
  const b = apiRow("lvwiki", 9235529);
  const stream = streamEventForApiRow(a, "lvwiki", LV);
  const at = Date.parse(String(a.timestamp)) / 1000 + 60;
  const del = revisionDeletion(stream, {
    revId: Number(a.revid),
    nfield: 4, // user hidden
    rcid: 990_000_001,
    logId: 990_000_001,
    at,
  });
  const sup = apiSuppression(b, {
    revId: Number(b.revid),
    bitmask: 2 | 8, // comment, suppressed
    rcid: 990_000_002,
    logId: 990_000_002,
    at: new Date((at + 60) * 1000).toISOString().replace(/\.000Z$/, "Z"),
  });
  await compare([
    rowsOf([streamRecord(del)], 0),
    rowsOf([streamRecord(stream)], 0),
    rowsOf([apiRecord(a, "lvwiki", LV), apiRecord(b, "lvwiki", LV)], 1),
    rowsOf([apiRecord(sup, "lvwiki", LV)], 1),
    rowsOf([streamRecord(streamEventForApiRow(b, "lvwiki", LV))], 0),
  ]);
});

/** CONSTRUCTED names: what JSON escapes (quote, backslash, controls), non-ASCII, astral, long. */
const ODD_WIKI = 'lv"wiki\\\u0001\t\u2028\u00e9\u{1f600}';
const ODD_TITLE = `Talk:"\\b\\u0041 /\u0007\n\u00c5\u{1f600}\ufeff${
  "\u0101".repeat(3000)
}`;

Deno.test("direct COPY: a wiki name and a page title JSON must escape reach the rollups and the redactions whole", async () => {
  // The recorded delete/delete (enwiki 616263547, 2013-11-12T01:29:06Z) and lvwiki edits, moved
  // onto ODD_WIKI and (deletion, first edit) ODD_TITLE: CONSTRUCTED.
  type Json = Record<string, unknown>;
  const deletion: Json = { ...apiRow("enwiki", 616263547), title: ODD_TITLE };
  const edit: Json = {
    ...apiRow("lvwiki", 9235558),
    title: ODD_TITLE,
    timestamp: "2013-11-12T01:00:00Z",
  };
  const other = apiRow("lvwiki", 9235529);
  const sup = apiSuppression(other, {
    revId: Number(other.revid),
    bitmask: 2, // comment
    rcid: 990_000_003,
    logId: 990_000_003,
    at: "2024-05-02T00:00:00Z",
  });
  const on = (row: Json) => apiRecord(row, ODD_WIKI, LV);
  const direct = await compare([
    rowsOf([on(deletion)], 0),
    rowsOf([on(edit), on(other)], 1),
    rowsOf([on(sup)], 1),
  ], {
    check: ({ rows, minute, pages, visibility }) => {
      const byRcid = new Map(
        (rows as Json[]).map((r) => [String(r.rcid), r]),
      );
      const e = byRcid.get(String(edit.rcid))!;
      assert.equal(e.wiki, ODD_WIKI);
      assert.equal(e.title, ODD_TITLE);
      assert.equal(
        (e.page_deleted_at as Date | null)?.toISOString(),
        "2013-11-12T01:29:06.000Z",
        "the page's deletion met its edit",
      );
      const o = byRcid.get(String(other.rcid))!;
      assert.equal(o.comment, null, "the suppression met its revision");
      assert.equal(o.comment_hidden, true);
      assert.deepEqual(
        (pages as Json[]).map((p) => [p.wiki, p.title]),
        [[ODD_WIKI, ODD_TITLE]],
      );
      assert.deepEqual(
        (visibility as Json[]).map((v) => v.wiki),
        [ODD_WIKI],
      );
      const m = minute as Json[];
      assert.ok(m.length > 0 && m.every((r) => r.wiki === ODD_WIKI));
      assert.equal(m.reduce((n, r) => n + Number(r.changes), 0), 4);
    },
  });
  assert.equal(direct, 3);
});

Deno.test("direct COPY: a session TimeZone other than UTC leaves what the merge leaves in UTC", async () => {
  const a = apiRow("lvwiki", 9235558);
  const b = apiRow("lvwiki", 9235529);
  const rows = rowsOf([apiRecord(a, "lvwiki", LV), apiRecord(b, "lvwiki", LV)]);
  // 23:59:30 UTC is the next day in Kathmandu (+05:45) and 15 minutes past a local hour.
  const late = rows.map((r, i) => ({
    ...r,
    rcid: String(880_000_000 + i),
    event_time: `2024-05-31T23:${String(20 + i).padStart(2, "0")}:30.000Z`,
  }));
  const direct = await compare([rows, late], { timeZone: "Asia/Kathmandu" });
  assert.equal(direct, 2);
});

Deno.test("direct COPY: an event time PostgreSQL rounds into the next minute is counted where the merge counts it", async () => {
  const a = apiRow("lvwiki", 9235558);
  const [row] = rowsOf([apiRecord(a, "lvwiki", LV)]);
  // timestamptz keeps microseconds: .9999996 rounds up to the next minute.
  await compare([[{ ...row!, event_time: "2024-05-01T10:00:59.9999996Z" }]]);
});

Deno.test("direct COPY: a connection lost in the middle of the COPY fails the write without the fallback, and the retry writes every row once", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await migrate(db.sql);
  const copies: string[] = [];
  const app = `review3-${crypto.randomUUID().slice(0, 8)}`;
  const sink = createSink((s) =>
    connectDb(config.DATABASE_URL, {
      schema: db.name,
      max: 2,
      applicationName: `${app}-${s.applicationName}`,
      statementTimeoutMs: s.statementTimeoutMs,
      onQuery: (q) => {
        if (q.startsWith("copy ")) copies.push(q.split(" ")[1]!);
      },
    }), { log: captureLogger("error") });
  try {
    const { replayedRecords } = await import("./_consumer_fixture.ts");
    const rows = rowsOf(replayedRecords(40_000), 0);
    // Terminates the sink's backend once it is in the direct COPY.
    const killer = (async () => {
      for (let i = 0; i < 400; i++) {
        const [k] = await db.sql<{ n: number }[]>`
          select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
          where application_name like ${app + "%"}
            and query like 'copy wiki_recent_changes%'`;
        if (k!.n > 0) return true;
        await new Promise((r) => setTimeout(r, 5));
      }
      return false;
    })();
    const first = await sink.write(rows).then(
      (r) => ({ ok: r }),
      (err) => ({ err }),
    );
    assert.ok(await killer, "the COPY was never seen running");
    assert.ok("err" in first, "the write on a lost connection failed");
    assert.deepEqual(copies, ["wiki_recent_changes"], "no fallback was tried");
    const second = await sink.write(rows);
    assert.equal(second.inserted + second.duplicates, rows.length);
    const [n] = await db.sql`
      select (select count(*) from wiki_recent_changes)::int as rows,
        (select sum(changes) from wiki_activity_minute)::int as minute,
        (select sum(changes) from wiki_activity_day)::int as day`;
    assert.deepEqual(n, { rows: 40_000, minute: 40_000, day: 40_000 });
  } finally {
    await sink.close();
  }
});
