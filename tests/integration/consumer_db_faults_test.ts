/**
 * PostgreSQL faults that are not about a row, while rows flow: a table locked past `lock_timeout`,
 * a revoked grant, a read-only database, a column renamed by a bad deploy. The consumer retries
 * without committing and dead-letters nothing; once the cause goes away every row arrives, once.
 */
import assert from "node:assert/strict";
import { connectDb } from "../../lib/sink/db.ts";
import { adminUrl } from "../_pg_admin.ts";
import { eventually, testConfig } from "../_helpers.ts";
import { freshDatabase } from "./_consumer_fixture.ts";
import { renderMetrics } from "../../lib/http/metrics.ts";
import {
  appRole,
  assertRecoveredWithoutLoss,
  dropRole,
  faultSeen,
  publishSteadily,
  retryLogged,
  startFaultRun,
  terminateBackends,
} from "./_db_faults_fixture.ts";

Deno.test("consumer: the main table locked for 15 s under a 300 ms lock_timeout costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const dbName = new URL(db.url).pathname.slice(1);
  const root = connectDb(await adminUrl(), { max: 1 });
  await root.unsafe(`alter database ${dbName} set lock_timeout = '300ms'`);
  await root.end();
  const run = await startFaultRun(base, db.url, db.sql);
  try {
    const publishing = publishSteadily(
      run.kafka,
      run.config.KAFKA_TOPIC,
      12_000,
      run.log,
    );
    const locker = connectDb(db.url, { max: 1 });
    try {
      await locker.begin(async (tx) => {
        await tx`lock table wiki_recent_changes in access exclusive mode`;
        await tx`select pg_sleep(15)`;
      });
    } finally {
      await locker.end();
    }
    assert.ok(
      run.consumer.stats.dbErrors > 0,
      "writes failed and were retried",
    );
    await assertRecoveredWithoutLoss(run, db.sql, await publishing);
    assert.ok(
      retryLogged(run, "55P03"),
      "the lock timeout is named in the logs",
    );
  } finally {
    await run.close();
  }
});

/** While writes fail: /healthz unhealthy naming the SQLSTATE, and the metric counts it. */
async function assertNamedUnhealthy(
  run: Awaited<ReturnType<typeof startFaultRun>>,
  code: string,
): Promise<void> {
  await eventually(() => !run.consumer.health().ok, 30_000);
  assert.match(run.consumer.health().reason ?? "", new RegExp(code));
  assert.match(
    await renderMetrics({ consumer: run.consumer.stats }),
    new RegExp(`wikistream_db_write_errors_total\\{code="${code}"\\} [1-9]`),
  );
}

/** Once the fault shows (named, unhealthy), keeps it 5 s (several retries), then `undo`es it. */
async function holdThenUndo(
  run: Awaited<ReturnType<typeof startFaultRun>>,
  code: string,
  undo: () => Promise<void>,
): Promise<void> {
  await eventually(() => faultSeen(run, code), 30_000);
  await assertNamedUnhealthy(run, code);
  await new Promise((r) => setTimeout(r, 5000));
  await undo();
}

/** The write was retried on `code` more than once, and the retries were logged naming it. */
function assertRetriedAndLogged(
  run: Awaited<ReturnType<typeof startFaultRun>>,
  code: string,
): void {
  assert.ok(run.consumer.stats.dbErrorsByCode[code]! > 1, "retried");
  assert.ok(retryLogged(run, code), `${code} is named in the logs`);
}

Deno.test("consumer: a revoked grant, then re-granted, costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  let roleName = "";
  try {
    await using db = await freshDatabase(base.DATABASE_URL);
    await using role = await appRole(db.url);
    roleName = role.name;
    const run = await startFaultRun(base, role.url, role.admin);
    try {
      await role.admin.unsafe(
        `revoke insert on wiki_recent_changes from ${role.name}`,
      );
      const publishing = publishSteadily(
        run.kafka,
        run.config.KAFKA_TOPIC,
        4000,
        run.log,
      );
      await assertNamedUnhealthy(run, "42501");
      await role.admin.unsafe(
        `grant insert on wiki_recent_changes to ${role.name}`,
      );
      await assertRecoveredWithoutLoss(run, role.admin, await publishing);
    } finally {
      await run.close();
    }
  } finally {
    if (roleName) await dropRole(roleName);
  }
});

Deno.test("consumer: a read-only database (25006), then writable again, costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const dbName = new URL(db.url).pathname.slice(1);
  const root = connectDb(await adminUrl(), { max: 1 });
  const run = await startFaultRun(base, db.url, db.sql);
  try {
    const publishing = publishSteadily(
      run.kafka,
      run.config.KAFKA_TOPIC,
      6000,
      run.log,
    );
    // New sessions start read-only; the consumer's current ones are cut so it opens new ones.
    await root.unsafe(
      `alter database ${dbName} set default_transaction_read_only = on`,
    );
    await terminateBackends(root, dbName);
    await holdThenUndo(run, "25006", async () => {
      await root.unsafe(
        `alter database ${dbName} reset default_transaction_read_only`,
      );
      await terminateBackends(root, dbName);
    });
    await assertRecoveredWithoutLoss(run, db.sql, await publishing);
    assertRetriedAndLogged(run, "25006");
  } finally {
    await run.close();
    await root.end();
  }
});

Deno.test("consumer: a column renamed by a bad deploy (42703), then renamed back, costs no row and no dead letter", async () => {
  const base = testConfig({ KAFKA_PARTITIONS: "3" });
  await using db = await freshDatabase(base.DATABASE_URL);
  const run = await startFaultRun(base, db.url, db.sql);
  try {
    const publishing = publishSteadily(
      run.kafka,
      run.config.KAFKA_TOPIC,
      6000,
      run.log,
    );
    // The partitioned parent renames the column in every partition too.
    await db
      .sql`alter table wiki_recent_changes rename column comment to comment_x`;
    await holdThenUndo(run, "42703", async () => {
      await db
        .sql`alter table wiki_recent_changes rename column comment_x to comment`;
    });
    await assertRecoveredWithoutLoss(run, db.sql, await publishing);
    assertRetriedAndLogged(run, "42703");
  } finally {
    await run.close();
  }
});
