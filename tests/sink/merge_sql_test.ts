/** Unit tests of lib/sink/_merge_sql.ts: the copy numbers the client gives the staging table. */
import assert from "node:assert/strict";
import { copyNumbers } from "../../lib/sink/_merge_sql.ts";
import type { SinkRow } from "../../lib/sink/sink.ts";

const row = (wiki: string, rcid: string) => ({ wiki, rcid }) as SinkRow;

Deno.test("copyNumbers() numbers each change's rows in batch order, rcid compared as a number", () => {
  assert.deepEqual(
    copyNumbers([
      row("enwiki", "5"),
      row("dewiki", "5"), // another wiki: another change
      row("enwiki", "5"), // the same change again (the other source, or a redelivery)
      row("enwiki", "05"), // the same rcid as the SQL compares it
      row("enwiki", "6"),
    ]),
    [1, 1, 2, 3, 1],
  );
  assert.deepEqual(copyNumbers([]), []);
});
