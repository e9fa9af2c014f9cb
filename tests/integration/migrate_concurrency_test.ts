/** Two migrators at once (two consumers starting together) on a fresh schema, on real PostgreSQL. */
import assert from "node:assert/strict";
import { migrate } from "../../lib/sink/migrate.ts";
import { connectDb } from "../../lib/sink/db.ts";
import { tempSchema, testConfig } from "../_helpers.ts";

Deno.test("two migrators at once both finish, take turns, and leave every index valid", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  const other = connectDb(config.DATABASE_URL, { schema: db.name, max: 2 });
  try {
    // Before: the waiting migrator's blocked statement held a snapshot that the other's
    // `create index concurrently` waited for: deadlock detected (40P01), an index left invalid.
    const [a, b] = await Promise.all([migrate(db.sql), migrate(other)]);
    const all = [...a, ...b].sort();
    assert.equal(new Set(all).size, all.length, "each migration ran once");
    assert.ok(all.includes("0011_wiki_time_index"), `applied: ${all}`);
    const invalid = await db.sql<{ name: string }[]>`
      select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${db.name} and not i.indisvalid`;
    assert.deepEqual([...invalid], []);
  } finally {
    await other.end({ timeout: 5 });
  }
});
