/**
 * The short form of the reliability suite (tests/chaos/harness.ts): the recorded rows under a
 * seeded schedule of kill -9, a Kafka and a PostgreSQL restart (on the suite's own pair, on free
 * ports, never the shared services), a second consumer and poison records. Every row must
 * arrive once and equal to the source. CHAOS_SEED replays a schedule.
 */
import assert from "node:assert/strict";
import {
  type ChaosOptions,
  runChaos,
  stopChaosServices,
} from "../chaos/harness.ts";

Deno.test("chaos: nothing lost, doubled or altered under kill -9, broker and database restarts and poison", async () => {
  const options: ChaosOptions = {
    seed: Number(Deno.env.get("CHAOS_SEED") ?? 20180307),
    copies: 1,
    faults: 6,
    revealSeconds: 40,
    timeoutMs: 180_000,
  };
  try {
    const report = await runChaos(options);
    // A fault the harness could not inject is its own failure, reported apart from data loss.
    assert.deepEqual(report.harness_failures, [], "harness failure");
    assert.ok(report.ok, JSON.stringify(report, null, 2));
    assert.equal(report.table_rows, report.source_rows);
    assert.ok(report.faults.length >= 6);
  } finally {
    await stopChaosServices(options);
  }
});
