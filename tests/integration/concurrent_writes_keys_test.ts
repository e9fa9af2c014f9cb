/**
 * The sink's locks between replicas whose sessions resolve the same tables through different
 * search_paths: one replica's path starts with an empty schema of its own (`current_schema()` is
 * then that schema, though every table it writes is the other's), the other's does not. The locks
 * must still make them wait for each other: they guard tables, not names. Each scenario holds both
 * writes in their transactions at once (./_concurrent_fixture.ts). Inputs:
 * ./_redaction_inputs.ts (CONSTRUCTED ones marked there).
 */
import assert from "node:assert/strict";
import { createSink } from "../../lib/sink/sink.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { held, replica, rowsOf } from "./_concurrent_fixture.ts";
import {
  apiRecord,
  apiRow,
  streamEventForApiRow,
  streamRecord,
} from "./_redaction_inputs.ts";
import { captureLogger, tempSchema, testConfig } from "../_helpers.ts";

const EN = "en.wikipedia.org";
const LV = "lv.wikipedia.org";

Deno.test("replicas with other search_paths: the second source of a change fills in the first one's row", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await using empty = await tempSchema(config);
  await migrate(db.sql);
  // The recorded lvwiki API row and a CONSTRUCTED stream event of the same change, which lacks
  // the page id the API row fills in.
  const api = apiRow("lvwiki", 9235558);
  const stream = streamEventForApiRow(api, "lvwiki", LV);
  const a = replica(config.DATABASE_URL, db.name, { directCopy: false });
  const b = replica(config.DATABASE_URL, `${empty.name},${db.name}`, {
    directCopy: false,
  });
  try {
    await held(
      db.sql,
      "lock table wiki_page_deletions in access exclusive mode",
      () => a.write(rowsOf([streamRecord(stream)], 0)),
      () => b.write(rowsOf([apiRecord(api, "lvwiki", LV)], 1)),
    );
  } finally {
    await a.sql.end();
    await b.sql.end();
  }
  const [row] = await db.sql<{ page_id: string | null }[]>`
    select page_id::text from wiki_recent_changes
    where wiki = 'lvwiki' and rcid = ${Number(api.rcid)}`;
  assert.equal(row?.page_id, String(api.pageid), "filled in from the API row");
});

Deno.test("replicas with other search_paths: a page deletion recorded by one reaches the other's row of the page", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  await using empty = await tempSchema(config);
  await migrate(db.sql);
  // As in concurrent_writes_test.ts: the recorded API delete/delete of PAGE, a CONSTRUCTED edit
  // of the page two days earlier and a CONSTRUCTED older edit, already stored.
  const PAGE = "Category talk:Joe songs";
  const deletion = apiRow("enwiki", 616263547);
  const edit = {
    ...apiRow("enwiki", 672726009),
    title: PAGE,
    ns: 15,
    rcid: 616263001,
    timestamp: "2013-11-10T01:00:00Z",
  };
  const older = {
    ...apiRow("enwiki", 672726005),
    title: PAGE,
    ns: 15,
    rcid: 616262001,
    timestamp: "2013-11-09T01:00:00Z",
  };
  await createSink(db.sql, { log: captureLogger("warn") }).write(
    rowsOf([apiRecord(older, "enwiki", EN)], 2),
  );
  const a = replica(config.DATABASE_URL, db.name);
  const b = replica(config.DATABASE_URL, `${empty.name},${db.name}`);
  try {
    await held(
      db.sql,
      `select 1 from wiki_recent_changes where rcid = ${older.rcid} for update`,
      () => a.write(rowsOf([apiRecord(deletion, "enwiki", EN)], 0)),
      () => b.write(rowsOf([apiRecord(edit, "enwiki", EN)], 1)),
    );
  } finally {
    await a.sql.end();
    await b.sql.end();
  }
  const [marked] = await db.sql<{ page_deleted_at: Date | null }[]>`
    select page_deleted_at from wiki_recent_changes where rcid = ${edit.rcid}`;
  assert.equal(
    marked?.page_deleted_at?.toISOString(),
    "2013-11-12T01:29:06.000Z",
    "the edit written beside the deletion is marked deleted",
  );
});
