/** splitStatements(): the statements of a no-transaction migration. */
import assert from "node:assert/strict";
import { splitStatements } from "../../lib/sink/migrate.ts";

Deno.test("splitStatements() splits at a semicolon that ends a line and drops comment lines", () => {
  const text = [
    "-- migrate: no-transaction",
    "create index concurrently if not exists a",
    "  on t (x);",
    "",
    "-- a comment; with a semicolon;",
    "alter index a set (fillfactor = 90);",
    "select 'a;b' as s;",
    "select 1",
  ].join("\n");
  assert.deepEqual(splitStatements(text), [
    "create index concurrently if not exists a\n  on t (x);",
    "alter index a set (fillfactor = 90);",
    "select 'a;b' as s;",
    "select 1",
  ]);
});
