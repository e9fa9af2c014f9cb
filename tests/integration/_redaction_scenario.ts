/** @module The redaction tests' frame: a consumer on a fresh topic and schema, then a full replay. */
import assert from "node:assert/strict";
import type { Config } from "../../lib/core/config.ts";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createKafka, type Kafka } from "../../lib/kafka/client.ts";
import type { Sql } from "../../lib/sink/db.ts";
import type { Logger } from "../../lib/core/log.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";
import {
  assertAggregatesMatch,
  publishRecords,
  type ReplayedRecord,
} from "./_consumer_fixture.ts";

/** What a scenario step gets. */
export interface Ctx {
  config: Config;
  kafka: Kafka;
  sql: Sql;
  log: Logger;
  published: ReplayedRecord[];
  publish(records: ReplayedRecord[]): Promise<void>;
  /** Resolves once the consumer has read every record published so far. */
  settled(): Promise<void>;
}

/** A stored row, column by column. */
export type Row = Record<string, unknown>;

/** Runs `fn` with a consumer on a fresh topic and schema, then proves a full replay changes nothing. */
export async function scenario(
  overrides: Record<string, string>,
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const config = testConfig({ KAFKA_PARTITIONS: "3", ...overrides });
  const log = captureLogger("warn");
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID,
    log,
  });
  await using db = await tempSchema(config);
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
  });
  const published: ReplayedRecord[] = [];
  const ctx: Ctx = {
    config,
    kafka,
    sql: db.sql,
    log,
    published,
    async publish(records) {
      published.push(...records);
      await publishRecords(kafka, config.KAFKA_TOPIC, records, {
        log,
        partitions: 3,
      });
    },
    async settled() {
      await eventually(() => consumer.stats.consumed >= published.length);
    },
  };
  try {
    await fn(ctx);
  } finally {
    controller.abort();
    await consumer.close();
  }
  await assertAggregatesMatch(db.sql);
  await assertReplayChangesNothing(ctx, db.name);
}

/** Publishes everything again (reversed) and re-reads the whole topic in a new group. */
async function assertReplayChangesNothing(
  ctx: Ctx,
  schema: string,
): Promise<void> {
  const before = await snapshot(ctx.sql);
  await publishRecords(
    ctx.kafka,
    ctx.config.KAFKA_TOPIC,
    [...ctx.published].reverse(),
    {
      log: ctx.log,
      partitions: 3,
    },
  );
  const again = {
    ...ctx.config,
    KAFKA_GROUP_ID: `${ctx.config.KAFKA_GROUP_ID}-replay`,
  };
  const consumer = await startConsumer(again, {
    log: ctx.log,
    signal: new AbortController().signal,
    schema,
    idleExitMs: 1500,
  });
  await consumer.done;
  assert.equal(
    consumer.stats.consumed,
    ctx.published.length * 2,
    "the replay read every record",
  );
  await consumer.close();
  assert.deepEqual(await snapshot(ctx.sql), before, "a replay changes nothing");
}

/** Every table the consumer writes, whole (ingested_at included: an update would show). */
async function snapshot(sql: Sql): Promise<unknown> {
  const rows = await sql`select * from wiki_recent_changes order by wiki, rcid`;
  const minutes =
    await sql`select * from wiki_activity_minute order by wiki, minute`;
  return JSON.parse(JSON.stringify({ rows, minutes }));
}

/** The row, once it exists. */
export async function rowOf(
  sql: Sql,
  wiki: string,
  rcid: unknown,
): Promise<Record<string, unknown>> {
  return await eventually(async () => {
    const [r] = await sql`select * from wiki_recent_changes where wiki = ${wiki}
      and rcid = ${String(rcid)}`;
    return r;
  });
}

/** The row once `ready(row)` holds; the row as it is when that never happens (for the assert). */
export async function rowWhen(
  sql: Sql,
  wiki: string,
  rcid: unknown,
  ready: (row: Row) => boolean,
): Promise<Row> {
  try {
    return await eventually(async () => {
      const r = await rowOf(sql, wiki, rcid);
      return ready(r) && r;
    }, 30_000);
  } catch {
    return await rowOf(sql, wiki, rcid);
  }
}
