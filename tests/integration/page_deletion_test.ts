/**
 * Page deletion and restore through real Kafka and PostgreSQL: the page's rows are marked, and
 * unmarked on restore, in either order of arrival; REDACT_DELETED_PAGES=true also removes their
 * text fields; a replay changes nothing. Inputs: ./_redaction_inputs.ts (CONSTRUCTED ones marked).
 */
import assert from "node:assert/strict";
import { type Ctx, rowOf, rowWhen, scenario } from "./_redaction_scenario.ts";
import {
  apiRecord,
  apiRow,
  streamEditOn,
  streamEvent,
  streamRecord,
} from "./_redaction_inputs.ts";

const EN = "en.wikipedia.org";
const PAGE = "Category talk:Joe songs";

/**
 * The recorded API delete/delete of PAGE (rcid 616263547, 2013-11-12T01:29:06Z) after a
 * CONSTRUCTED earlier edit of it (recorded edit 672726009 moved onto the page), then a CONSTRUCTED
 * restore (the recorded delete/restore row 616228397 moved onto the page, later).
 */
async function deleteThenRestore({ sql, publish }: Ctx): Promise<void> {
  const edit: Record<string, unknown> = {
    ...apiRow("enwiki", 672726009),
    title: PAGE,
    ns: 15,
    rcid: 616263001,
    timestamp: "2013-11-12T01:00:00Z",
  };
  const deletion = apiRow("enwiki", 616263547);
  await publish([apiRecord(edit, "enwiki", EN)]);
  await rowOf(sql, "enwiki", edit.rcid);
  await publish([apiRecord(deletion, "enwiki", EN)]);
  const marked = await rowWhen(
    sql,
    "enwiki",
    edit.rcid,
    (r) => r.page_deleted_at !== null,
  );
  assert.equal(
    new Date(marked.page_deleted_at as string).toISOString(),
    "2013-11-12T01:29:06.000Z",
  );
  assert.equal(marked.comment, edit.comment, "nothing is dropped unless asked");
  const logRow = await rowOf(sql, "enwiki", deletion.rcid);
  assert.equal(
    logRow.page_deleted_at,
    null,
    "the log row itself is not marked",
  );

  const restore = {
    ...apiRow("enwiki", 616228397),
    title: PAGE,
    ns: 15,
    rcid: 616263900,
    logid: 52556400,
    timestamp: "2013-11-12T02:00:00Z",
  };
  await publish([apiRecord(restore, "enwiki", EN)]);
  const back = await rowWhen(
    sql,
    "enwiki",
    edit.rcid,
    (r) => r.page_deleted_at === null,
  );
  assert.equal(back.page_deleted_at, null, "a restore unmarks");
}

/**
 * The recorded stream delete/delete first, then CONSTRUCTED edits of its page from before the
 * deletion (late: another partition, a replay) and after it (the page was re-created).
 */
async function deletionFirst({ sql, publish }: Ctx): Promise<void> {
  const deletion = streamEvent(1769695961);
  await publish([streamRecord(deletion)]);
  await rowOf(sql, "enwiki", deletion.id);
  const at = Number(deletion.timestamp);
  const before = streamEditOn(deletion, { rcid: 1769695001, at: at - 3600 });
  const recreated = streamEditOn(deletion, { rcid: 1769699500, at: at + 3600 });
  await publish([streamRecord(before), streamRecord(recreated)]);
  const b = await rowOf(sql, "enwiki", before.id);
  const r = await rowOf(sql, "enwiki", recreated.id);
  assert.equal(
    new Date(b.page_deleted_at as string).getTime(),
    at * 1000,
    "an older row that arrives after the deletion is marked on arrival",
  );
  assert.equal(r.page_deleted_at, null, "a row newer than the deletion is not");
}

Deno.test("consumer marks a deleted page's rows and unmarks them on restore, in any order", async () => {
  await scenario({}, async (ctx) => {
    await deleteThenRestore(ctx);
    await deletionFirst(ctx);
  });
});

Deno.test("consumer with REDACT_DELETED_PAGES=true removes a deleted page's text fields", async () => {
  await scenario({ REDACT_DELETED_PAGES: "true" }, async ({ sql, publish }) => {
    const deletion = streamEvent(1769695961);
    const at = Number(deletion.timestamp);
    const edit = streamEditOn(deletion, { rcid: 1769695002, at: at - 60 });
    await publish([streamRecord(edit)]);
    await rowOf(sql, "enwiki", edit.id);
    await publish([streamRecord(deletion)]);
    const gone = await rowWhen(
      sql,
      "enwiki",
      edit.id,
      (r) => r.page_deleted_at !== null,
    );
    assert.notEqual(gone.page_deleted_at, null);
    assert.equal(gone.comment, null);
    assert.equal(gone.user_name, null);
    const raw = gone.raw as Record<string, unknown>;
    for (const k of ["user", "comment", "parsedcomment"]) {
      assert.ok(!(k in raw), `raw.${k} removed`);
    }
    assert.equal(
      gone.title,
      deletion.title,
      "the title stays: a restore is matched by it",
    );
  });
});
