/** Unit tests of lib/sink/batch_handler.ts with a fake sink: dead-letter headers, retry until durable. */
import assert from "node:assert/strict";
import {
  createBatchHandler,
  decodeBatch,
  decodeInSlices,
} from "../../lib/sink/batch_handler.ts";
import { copyChunks } from "../../lib/sink/copy.ts";
import type {
  BatchContext,
  RecordBatch,
} from "../../lib/kafka/batch_consumer.ts";
import { noopLogger } from "../../lib/core/log.ts";
import type {
  DeadLetter,
  Sink,
  SinkRow,
  WriteResult,
} from "../../lib/sink/sink.ts";
import { replayedRecords } from "../integration/_consumer_fixture.ts";

Deno.test.sanitizer({ ops: true, resources: true });

const enc = new TextEncoder();

function batchOf(values: (string | null)[]): RecordBatch {
  return {
    topic: "t",
    partition: 2,
    highWatermark: String(values.length),
    records: values.map((v, i) => ({
      topic: "t",
      partition: 2,
      offset: String(10 + i),
      key: null,
      value: v === null ? null : enc.encode(v),
      headers: { wiki: "x" },
      timestamp: "1700000000000",
    })),
  };
}

const ctx: BatchContext = {
  heartbeat: () => Promise.resolve(),
  isRunning: () => true,
  signal: new AbortController().signal,
};

class FlakySink implements Sink {
  failures: number;
  writes: { rows: SinkRow[]; deadLetters: DeadLetter[] }[] = [];
  close(): Promise<void> {
    return Promise.resolve();
  }
  constructor(failures: number) {
    this.failures = failures;
  }
  write(rows: SinkRow[], deadLetters: DeadLetter[] = []): Promise<WriteResult> {
    if (this.failures-- > 0) {
      return Promise.reject(
        Object.assign(new Error("down"), { code: "ECONNREFUSED" }),
      );
    }
    this.writes.push({ rows, deadLetters });
    return Promise.resolve({
      inserted: rows.length,
      duplicates: 0,
      deadLettered: deadLetters,
      byPartition: new Map(),
    });
  }
}

Deno.test("decodeBatch() dead-letters bad values with why, where from and when", () => {
  const [good] = replayedRecords(1);
  const at = new Date("2024-04-26T00:00:00Z");
  const { rows, deadLetters } = decodeBatch(
    batchOf([good!.value, "{nope", null]),
    at,
  );
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.kafka_offset, "10");
  assert.deepEqual(deadLetters.map((d) => d.reason), ["not_json", "empty"]);
  assert.deepEqual(deadLetters[0]!.headers, {
    wiki: "x",
    "dlq.reason": "not_json",
    "dlq.error": deadLetters[0]!.error,
    "dlq.source_topic": "t",
    "dlq.source_partition": "2",
    "dlq.source_offset": "11",
    "dlq.source_timestamp": "1700000000000",
    "dlq.received_at": "2024-04-26T00:00:00.000Z",
  });
  assert.deepEqual(deadLetters[0]!.value, enc.encode("{nope"));
});

Deno.test("decodeInSlices() gives decodeBatch()'s rows, dead letters and COPY bytes, in order, letting I/O run between slices", async () => {
  const good = replayedRecords(300).map((r) => r.value);
  const values = good.flatMap((v, i) =>
    i % 37 === 5 ? [v, "{nope"] : i % 91 === 0 ? [null, v] : [v]
  );
  const at = new Date("2024-04-26T00:00:00Z");
  const whole = decodeBatch(batchOf(values), at);
  let turns = 0;
  const ticking = setInterval(() => turns++, 0);
  const sliced = await decodeInSlices(batchOf(values), at);
  clearInterval(ticking);
  assert.ok(turns > 0, "a timer ran while the batch was decoded");
  assert.deepEqual(sliced.deadLetters, whole.deadLetters);
  assert.deepEqual(
    sliced.rows.map((r) => r.kafka_offset),
    whole.rows.map((r) => r.kafka_offset),
  );
  const bytes = (rows: SinkRow[]) =>
    [...copyChunks(rows)].map((c) => new TextDecoder().decode(c)).join("");
  assert.equal(bytes(sliced.rows), bytes(whole.rows));
});

Deno.test("createBatchHandler() retries a failing write and resolves only once it succeeded", async () => {
  const sink = new FlakySink(2);
  const controller = new AbortController();
  const handle = createBatchHandler({
    sink,
    log: noopLogger(),
    signal: controller.signal,
  });
  const [good] = replayedRecords(1);
  // The retry waits are real but short (0.5 s, then 1 s at most).
  await handle(batchOf([good!.value, "{bad"]), ctx);
  assert.equal(sink.writes.length, 1);
  assert.equal(sink.writes[0]!.rows.length, 1);
  assert.equal(sink.writes[0]!.deadLetters.length, 1);
});

Deno.test("createBatchHandler() abandons the batch when the partition is lost during an outage", async () => {
  const sink = new FlakySink(Number.POSITIVE_INFINITY);
  const lost = new AbortController();
  const handle = createBatchHandler({
    sink,
    log: noopLogger(),
    signal: new AbortController().signal,
  });
  const [good] = replayedRecords(1);
  const pending = handle(batchOf([good!.value]), {
    ...ctx,
    signal: lost.signal,
  });
  setTimeout(() => lost.abort(new Error("rebalance")), 100);
  await assert.rejects(pending);
  assert.equal(sink.writes.length, 0);
});
