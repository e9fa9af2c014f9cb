/**
 * Revision deletion and suppression through real Kafka and PostgreSQL: the hidden fields leave the
 * typed columns and `raw`, whichever of row and log event arrives first, and a replay changes
 * nothing. Inputs: ./_redaction_inputs.ts (log events no recording holds are marked CONSTRUCTED).
 */
import assert from "node:assert/strict";
import {
  type Ctx,
  type Row,
  rowOf,
  rowWhen,
  scenario,
} from "./_redaction_scenario.ts";
import {
  apiRecord,
  apiRow,
  apiSuppression,
  logEntryDeletion,
  revisionDeletion,
  streamEvent,
  streamRecord,
} from "./_redaction_inputs.ts";

function assertNotInRaw(row: Row, keys: string[], texts: string[]): void {
  const raw = row.raw as Record<string, unknown>;
  for (const k of keys) assert.ok(!(k in raw), `raw.${k} removed`);
  for (const t of texts) {
    assert.ok(!JSON.stringify(raw).includes(t), `"${t}" is nowhere in raw`);
  }
}

/** A recorded enwiki edit, then a CONSTRUCTED delete/revision hiding its comment and user. */
async function rowFirst({ sql, publish }: Ctx): Promise<void> {
  const edit = streamEvent(1769695958);
  await publish([streamRecord(edit)]);
  await rowOf(sql, "enwiki", edit.id);
  const hide = revisionDeletion(edit, {
    revId: 1220798182,
    nfield: 6,
    rcid: 1769699001,
    logId: 161650999,
    at: Number(edit.timestamp) + 60,
  });
  await publish([streamRecord(hide)]);
  const row = await rowWhen(
    sql,
    "enwiki",
    edit.id,
    (r) => r.user_name === null,
  );
  assert.equal(row.user_name, null);
  assert.equal(row.comment, null);
  assert.equal(row.title, edit.title, "what was not hidden stays");
  assert.equal(row.rev_id, "1220798182");
  assertNotInRaw(row, ["user", "comment", "parsedcomment"], [
    String(edit.user),
    "Moved from the ph",
  ]);
  assert.equal(row.user_hidden, true);
  assert.equal(row.comment_hidden, true);
  assert.equal(row.sha1_hidden, false);
  assert.equal(
    new Date(row.redacted_at as string).getTime(),
    Number(hide.timestamp) * 1000,
    "the time of the redaction is recorded",
  );
}

/** A CONSTRUCTED delete/revision hiding a recorded eswiki IP edit's user, before that edit. */
async function redactionFirst({ sql, publish }: Ctx): Promise<void> {
  const edit = streamEvent(312240309);
  const hide = revisionDeletion(edit, {
    revId: 159712614,
    nfield: 4,
    rcid: 312240999,
    logId: 99000001,
    at: Number(edit.timestamp) + 60,
  });
  await publish([streamRecord(hide)]);
  await rowOf(sql, "eswiki", hide.id);
  await publish([streamRecord(edit)]);
  const row = await rowOf(sql, "eswiki", edit.id);
  assert.equal(
    row.user_name,
    null,
    "a redaction that came first applies on arrival",
  );
  assert.equal(row.user_hidden, true);
  assertNotInRaw(row, ["user"], ["187.131.36.75"]);
  assert.equal(row.comment_hidden, false, "only the user was hidden");
  assert.equal(row.is_anon, true, "the activity counts keep their inputs");
}

/** A recorded enwiki API row with sha1, then a CONSTRUCTED suppress/revision (1 | 4 | 8). */
async function apiSuppressionOfTextAndUser(
  { sql, publish }: Ctx,
): Promise<void> {
  const edit = apiRow("enwiki", 672726006);
  await publish([apiRecord(edit, "enwiki", "en.wikipedia.org")]);
  await rowOf(sql, "enwiki", edit.rcid);
  const suppress = apiSuppression(edit, {
    revId: 619586846,
    bitmask: 13,
    rcid: 672726100,
    logId: 57955800,
    at: "2014-08-02T20:00:00Z",
  });
  await publish([apiRecord(suppress, "enwiki", "en.wikipedia.org")]);
  const row = await rowWhen(sql, "enwiki", edit.rcid, (r) => r.sha1 === null);
  assert.equal(row.sha1, null);
  assert.equal(row.user_name, null);
  assert.equal(row.user_id, null);
  assert.equal(row.comment, edit.comment);
  assertNotInRaw(row, ["sha1", "user", "userid"], ["f593fe2e", "Hamish59"]);
  assert.equal(row.sha1_hidden, true);
  assert.equal(row.suppressed, true);
}

/** The recorded delete/delete log event, then a CONSTRUCTED delete/event hiding its action and comment. */
async function logEntryHidden({ sql, publish }: Ctx): Promise<void> {
  const entry = streamEvent(1769695961);
  await publish([streamRecord(entry)]);
  await rowOf(sql, "enwiki", entry.id);
  const hide = logEntryDeletion(entry, {
    nfield: 3,
    rcid: 1769699002,
    logId: 161651000,
    at: Number(entry.timestamp) + 120,
  });
  await publish([streamRecord(hide)]);
  const row = await rowWhen(sql, "enwiki", entry.id, (r) => r.title === null);
  assert.equal(row.title, null);
  assert.equal(row.comment, null);
  assert.equal(row.log_params, null);
  assert.equal(row.user_name, "Explicit", "the user was not hidden");
  assertNotInRaw(row, [
    "title",
    "title_url",
    "comment",
    "parsedcomment",
    "log_action_comment",
  ], [
    "Replaceable non-free use",
    "Replaceable_non-free_use",
  ]);
  assert.equal(row.action_hidden, true);
  assert.equal(row.comment_hidden, true);
}

Deno.test("consumer hides revision-deleted fields in the columns and in raw, whichever arrives first", async () => {
  await scenario({}, async (ctx) => {
    await rowFirst(ctx);
    await redactionFirst(ctx);
    await apiSuppressionOfTextAndUser(ctx);
    await logEntryHidden(ctx);
  });
});
