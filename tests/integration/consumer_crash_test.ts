/** A real consumer process killed with SIGKILL at random points, and stopped with SIGTERM. */
import assert from "node:assert/strict";
import { createKafka } from "../../lib/kafka/client.ts";
import { captureLogger, eventually, testConfig } from "../_helpers.ts";
import {
  assertMatchesSource,
  committedOffsets,
  freshDatabase,
  publishRecords,
  type ReplayedRecord,
  replayedRecords,
  spawnConsumer,
} from "./_consumer_fixture.ts";

function setup() {
  const config = testConfig();
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  const env = (url: string) => ({
    KAFKA_BROKERS: config.KAFKA_BROKERS.join(","),
    KAFKA_TOPIC: config.KAFKA_TOPIC,
    KAFKA_GROUP_ID: config.KAFKA_GROUP_ID,
    KAFKA_CLIENT_ID: config.KAFKA_CLIENT_ID,
    DATABASE_URL: url,
  });
  return { config, log, kafka, env };
}

/** Rows in the table (0 before the consumer's migrations created it). */
async function count(sql: { unsafe(q: string): Promise<unknown[]> }) {
  const rows = await sql.unsafe(
    "select count(*)::int as n from wiki_recent_changes",
  ).catch(() => [{ n: 0 }]) as { n: number }[];
  return rows[0]?.n ?? 0;
}

Deno.test("consumer.ts killed with SIGKILL at random points loses and doubles nothing", async () => {
  const { config, log, kafka, env } = setup();
  await using db = await freshDatabase(config.DATABASE_URL);
  const source: ReplayedRecord[] = replayedRecords(20_000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source, { log });
  const seen: number[] = [];
  for (let round = 0; round < 3; round++) {
    const before = await count(db.sql);
    const child = await spawnConsumer(env(db.url));
    // Once this process has written something (a dead predecessor holds its partitions until its
    // session expires), kill it at a random point: before, during or after a write.
    await eventually(
      async () => {
        const n = await count(db.sql);
        return n > before || n >= source.length;
      },
      60_000,
      50,
    );
    await new Promise((r) => setTimeout(r, Math.random() * 1500));
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL", `round ${round} was killed`);
    seen.push(await count(db.sql));
    // More data arrives between crashes, replayed rows included (the producer re-reads overlap).
    const more = replayedRecords(2000, source.length);
    await publishRecords(kafka, config.KAFKA_TOPIC, [
      ...more,
      ...source.slice(0, 300),
    ], { log });
    source.push(...more);
  }
  // Some rounds must have been cut mid-stream, or the test proved nothing.
  assert.ok(
    seen.some((n) => n > 0 && n < source.length),
    `rows after each kill: ${seen.join(", ")}`,
  );
  const last = await spawnConsumer(env(db.url), ["--idle-exit", "2"]);
  const status = await last.status;
  assert.equal(status.code, 0);
  await assertMatchesSource(db.sql, source);
});

Deno.test("consumer.ts on SIGTERM finishes and commits the batch in flight, then exits 0", async () => {
  const { config, log, kafka, env } = setup();
  await using db = await freshDatabase(config.DATABASE_URL);
  const source = replayedRecords(20_000);
  await publishRecords(kafka, config.KAFKA_TOPIC, source, { log });
  const child = await spawnConsumer(env(db.url));
  try {
    await eventually(
      async () => (await count(db.sql)) > 0,
      60_000,
      50,
    );
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  child.kill("SIGTERM");
  const status = await child.status;
  assert.equal(status.code, 0);
  // Everything written is committed, and the commit reaches right up to what was written.
  const committed = await committedOffsets(
    kafka,
    config.KAFKA_GROUP_ID,
    config.KAFKA_TOPIC,
  );
  const maxima = await db.sql<{ p: number; max: string }[]>`
    select kafka_partition as p, max(kafka_offset)::text as max
    from wiki_recent_changes group by 1`;
  assert.ok(maxima.length > 0);
  for (const { p, max } of maxima) {
    const c = committed.get(p);
    assert.ok(c !== null && c !== undefined, `partition ${p} committed`);
    const gap = c - (BigInt(max) + 1n);
    // Only a transaction marker may sit between the last written record and the commit.
    assert.ok(
      gap >= 0n && gap <= 1n,
      `partition ${p}: max ${max}, committed ${c}`,
    );
  }
  // A restart finishes the topic exactly.
  const again = await spawnConsumer(env(db.url), ["--idle-exit", "2"]);
  assert.equal((await again.status).code, 0);
  await assertMatchesSource(db.sql, source);
});
