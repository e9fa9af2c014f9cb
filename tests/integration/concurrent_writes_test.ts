/**
 * Writes in flight side by side on real PostgreSQL: two in one consumer (groupWrites' two slots)
 * or one in each of two replicas. Each scenario holds both writes inside their transactions at
 * once, with a lock a third session takes on a table both need, then lets them go: a page deletion
 * recorded by one write reaches the other's uncommitted row of the page, and the second source of
 * a change fills in the first one's row. Each also runs with replicas whose sessions resolve the
 * same tables through different search_paths (one starts with an empty schema of its own, so its
 * `current_schema()` differs): the locks guard tables, not names. (concurrent_writes_stress_test.ts:
 * many batches through two slots leave what one slot leaves.) Inputs: ./_redaction_inputs.ts
 * (CONSTRUCTED ones marked there).
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
import { sinkTables } from "./_direct_copy_fixture.ts";

const EN = "en.wikipedia.org";
const LV = "lv.wikipedia.org";

/** CONSTRUCTED: recorded enwiki edit `recorded` moved onto `page` (ns 15) as rcid `rcid` at `at`. */
function onPage(page: string, recorded: number, rcid: number, at: string) {
  return {
    ...apiRow("enwiki", recorded),
    title: page,
    ns: 15,
    rcid,
    timestamp: at,
  };
}

/** The two replicas' sessions: the same search_path, or the second's with an empty schema first. */
const PATHS = [
  { name: "two writes in flight", otherPath: false },
  { name: "replicas with other search_paths", otherPath: true },
];

/** The second replica's search_path for `schema` (and an empty schema to put first, if asked). */
async function secondPath(
  config: ReturnType<typeof testConfig>,
  schema: string,
  otherPath: boolean,
): Promise<{ path: string } & AsyncDisposable> {
  if (!otherPath) {
    return { path: schema, [Symbol.asyncDispose]: async () => {} };
  }
  const empty = await tempSchema(config);
  return {
    path: `${empty.name},${schema}`,
    [Symbol.asyncDispose]: () => empty[Symbol.asyncDispose](),
  };
}

for (const { name, otherPath } of PATHS) {
  Deno.test(`${name}: a page deletion recorded by one reaches the other's row of the page`, async () => {
    const config = testConfig();
    await using db = await tempSchema(config);
    await using other = await secondPath(config, db.name, otherPath);
    await migrate(db.sql);
    // The recorded API delete/delete of PAGE (2013-11-12T01:29:06Z), and a CONSTRUCTED edit of the
    // page two days earlier (recorded edit 672726009 moved onto it): no rollup row in common.
    const PAGE = "Category talk:Joe songs";
    const deletion = apiRow("enwiki", 616263547);
    const edit = onPage(PAGE, 672726009, 616263001, "2013-11-10T01:00:00Z");
    // A CONSTRUCTED older edit of the page (recorded edit 672726005 moved onto it), already stored.
    const older = onPage(PAGE, 672726005, 616262001, "2013-11-09T01:00:00Z");
    await createSink(db.sql, { log: captureLogger("warn") }).write(
      rowsOf([apiRecord(older, "enwiki", EN)], 2),
    );
    const a = replica(config.DATABASE_URL, db.name);
    const b = replica(config.DATABASE_URL, other.path);
    try {
      // The deletion's write records it, then waits to mark the older row (a third session holds
      // that row); meanwhile the edit's write runs beside it, its row not yet committed when the
      // deletion's marking statement began.
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
    const marked = await db.sql<
      { rcid: string; page_deleted_at: Date | null }[]
    >`
    select rcid::text, page_deleted_at from wiki_recent_changes
    where title = ${PAGE} order by rcid`;
    assert.deepEqual(
      marked.map((r) => [r.rcid, r.page_deleted_at?.toISOString()]),
      [
        [String(older.rcid), "2013-11-12T01:29:06.000Z"],
        [String(edit.rcid), "2013-11-12T01:29:06.000Z"],
        [String(deletion.rcid), undefined],
      ],
      "both edits of the page are marked deleted, the log row is not",
    );
  });
}

for (const { name, otherPath } of PATHS) {
  for (const directCopy of [false, true]) {
    Deno.test(
      `${name}${
        directCopy ? "" : " (merge only)"
      }: the second source of a change fills in the first one's row`,
      async () => {
        const config = testConfig();
        await using db = await tempSchema(config);
        await using other = await secondPath(config, db.name, otherPath);
        await migrate(db.sql);
        // The recorded lvwiki API row and a CONSTRUCTED stream event of the same change, which lacks
        // the page id, user id, tags and sha1 that the API row fills in.
        const api = apiRow("lvwiki", 9235558);
        const stream = streamEventForApiRow(api, "lvwiki", LV);
        const first = rowsOf([streamRecord(stream)], 0);
        const second = rowsOf([apiRecord(api, "lvwiki", LV)], 1);
        const a = replica(config.DATABASE_URL, db.name, { directCopy });
        const b = replica(config.DATABASE_URL, other.path, { directCopy });
        let results: unknown[];
        try {
          // The stream row's write holds its insert at the redaction step; the API row's write waits
          // for it (on the row or on the merge lock) inside its own transaction.
          results = await held(
            db.sql,
            "lock table wiki_page_deletions in access exclusive mode",
            () => a.write(first),
            () => b.write(second),
          );
        } finally {
          await a.sql.end();
          await b.sql.end();
        }
        const [ra, rb] = results as { inserted: number; duplicates: number }[];
        assert.deepEqual([ra!.inserted, rb!.inserted, rb!.duplicates], [
          1,
          0,
          1,
        ]);
        const [row] = await db.sql<{ page_id: string | null }[]>`
      select page_id::text from wiki_recent_changes
      where wiki = 'lvwiki' and rcid = ${Number(api.rcid)}`;
        assert.equal(
          row?.page_id,
          String(api.pageid),
          "filled in from the API row",
        );
        // Exactly what the two writes leave one after the other.
        await using ref = await tempSchema(config);
        await migrate(ref.sql);
        const alone = createSink(ref.sql, { log: captureLogger("warn") });
        await alone.write(first);
        await alone.write(second);
        assert.deepEqual(await sinkTables(db.sql), await sinkTables(ref.sql));
      },
    );
  }
}
