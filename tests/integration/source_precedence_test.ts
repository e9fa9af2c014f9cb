/**
 * One change from both sources through real Kafka and PostgreSQL: the Action API row fills in what
 * the EventStreams row lacks, nothing known becomes NULL, the change is counted once, and a replay
 * changes nothing. The stream twins of the recorded lvwiki API rows are CONSTRUCTED
 * (./_redaction_inputs.ts: no change was recorded from both sources).
 */
import assert from "node:assert/strict";
import { rowOf, rowWhen, scenario } from "./_redaction_scenario.ts";
import {
  apiRecord,
  apiRow,
  streamEventForApiRow,
  streamRecord,
} from "./_redaction_inputs.ts";

const LV = "lv.wikipedia.org";

Deno.test("consumer fills an EventStreams row in from the Action API row of the same change, counted once", async () => {
  await scenario({}, async ({ sql, publish, settled }) => {
    // Stream first, then the recorded API row: page id and tags fill in.
    const a = apiRow("lvwiki", 9235558);
    await publish([streamRecord(streamEventForApiRow(a, "lvwiki", LV))]);
    const early = await rowOf(sql, "lvwiki", a.rcid);
    assert.equal(early.page_id, null, "the stream has no page id");
    await publish([apiRecord(a, "lvwiki", LV)]);
    const filled = await rowWhen(
      sql,
      "lvwiki",
      a.rcid,
      (r) => r.page_id !== null,
    );
    assert.equal(filled.page_id, "3340");
    assert.deepEqual(filled.tags, ["visualeditor"]);
    assert.equal(filled.user_name, "217.199.98.81");
    const [m] = await sql`select changes::int from wiki_activity_minute
      where wiki = 'lvwiki' and minute = '2020-04-12T14:01:00Z'`;
    assert.equal(m?.changes, 1, "the change is counted once");

    // API first, then the stream: nothing known becomes NULL. Both in one transaction: the same.
    const b = apiRow("lvwiki", 9235529);
    const c = apiRow("lvwiki", 9235511);
    await publish([apiRecord(b, "lvwiki", LV)]);
    await rowOf(sql, "lvwiki", b.rcid);
    await publish([
      streamRecord(streamEventForApiRow(b, "lvwiki", LV)),
      streamRecord(streamEventForApiRow(c, "lvwiki", LV)),
      apiRecord(c, "lvwiki", LV),
    ]);
    await settled();
    for (const row of [b, c]) {
      const got = await rowOf(sql, "lvwiki", row.rcid);
      assert.equal(got.page_id, String(row.pageid), `page id of ${row.rcid}`);
      assert.deepEqual(got.tags, row.tags, `tags of ${row.rcid}`);
      assert.equal(got.comment, row.comment, `comment of ${row.rcid}`);
    }
  });
});
