/** Unit tests of lib/sink/group_writes.ts with a fake sink: grouping, order, errors. */
import assert from "node:assert/strict";
import { groupWrites } from "../../lib/sink/group_writes.ts";
import type { Sink, SinkRow, WriteResult } from "../../lib/sink/sink.ts";

/** A sink whose writes wait until the test releases them; it records what each write held. */
function gatedSink() {
  const writes: { offsets: string[]; release: (err?: Error) => void }[] = [];
  const sink: Sink = {
    write(rows) {
      const done = Promise.withResolvers<WriteResult>();
      const byPartition = new Map<number, number>();
      for (const r of rows) {
        byPartition.set(
          r.kafka_partition,
          (byPartition.get(r.kafka_partition) ?? 0) + 1,
        );
      }
      writes.push({
        offsets: rows.map((r) => `${r.kafka_partition}:${r.kafka_offset}`),
        release: (err) =>
          err ? done.reject(err) : done.resolve({
            inserted: rows.length,
            duplicates: 0,
            deadLettered: [],
            byPartition,
          }),
      });
      return done.promise;
    },
    close: () => Promise.resolve(),
  };
  return { sink, writes };
}

const row = (partition: number, offset: number) =>
  ({ kafka_partition: partition, kafka_offset: String(offset) }) as SinkRow;

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("groupWrites() starts a lone write at once and groups the ones that wait", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 1);
  const first = grouped.write([row(0, 1)]);
  await tick();
  assert.equal(writes.length, 1, "nothing in flight: written at once");
  const second = grouped.write([row(1, 1), row(1, 2)]);
  const third = grouped.write([row(2, 1)]);
  // A second batch of partition 0 waits for the next group: a caller's share stays its own.
  const again = grouped.write([row(0, 2)]);
  writes[0]!.release();
  assert.equal((await first).inserted, 1);
  await tick();
  assert.deepEqual(writes[1]!.offsets, ["1:1", "1:2", "2:1", "0:2"]);
  writes[1]!.release();
  assert.equal((await second).inserted, 2);
  assert.equal((await third).inserted, 1);
  assert.equal((await again).inserted, 1);
  assert.equal(writes.length, 2);
});

Deno.test("groupWrites() keeps two batches of one partition apart, in order", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 1);
  const a = grouped.write([row(0, 1)]);
  const b = grouped.write([row(0, 2)]);
  const c = grouped.write([row(0, 3)]);
  await tick();
  writes[0]!.release();
  await a;
  await tick();
  assert.deepEqual(writes[1]!.offsets, ["0:2"]);
  writes[1]!.release();
  await b;
  await tick();
  assert.deepEqual(writes[2]!.offsets, ["0:3"]);
  writes[2]!.release();
  await c;
});

Deno.test("groupWrites() hands a failed group's error to each of its callers, and goes on", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 1);
  const a = grouped.write([row(0, 1)]);
  await tick();
  const b = grouped.write([row(1, 1)]);
  const c = grouped.write([row(2, 1)]);
  writes[0]!.release();
  await a;
  await tick();
  writes[1]!.release(new Error("database down"));
  await assert.rejects(b, /database down/);
  await assert.rejects(c, /database down/);
  const retried = grouped.write([row(1, 1)]);
  await tick();
  writes[2]!.release();
  assert.equal((await retried).inserted, 1);
});

Deno.test("groupWrites() writes each caller alone when PostgreSQL refuses the group, so a fault stays its caller's", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 1);
  const a = grouped.write([row(0, 1)]);
  await tick();
  const b = grouped.write([row(1, 1)]);
  const c = grouped.write([row(2, 1)]);
  writes[0]!.release();
  await a;
  await tick();
  const refused = Object.assign(new Error("permission denied"), {
    name: "PostgresError",
    code: "42501",
  });
  const bRefused = assert.rejects(b, /permission denied/);
  writes[1]!.release(refused);
  await tick();
  assert.deepEqual(writes[2]!.offsets, ["1:1"]);
  writes[2]!.release(refused);
  await tick();
  assert.deepEqual(writes[3]!.offsets, ["2:1"]);
  writes[3]!.release();
  await bRefused;
  assert.equal((await c).inserted, 1, "the other partition's batch is written");
});

Deno.test("groupWrites() runs two writes at once by default and groups the ones that wait for a slot", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink);
  const a = grouped.write([row(0, 1)]);
  const b = grouped.write([row(1, 1)]);
  await tick();
  assert.equal(writes.length, 2, "two slots: both written at once");
  const c = grouped.write([row(2, 1)]);
  const d = grouped.write([row(0, 2)]);
  await tick();
  assert.equal(writes.length, 2, "no slot free: c and d wait");
  writes[0]!.release();
  assert.equal((await a).inserted, 1);
  await tick();
  assert.deepEqual(writes[2]!.offsets, ["2:1", "0:2"], "one group for both");
  writes[1]!.release();
  writes[2]!.release();
  assert.deepEqual(
    [(await b).inserted, (await c).inserted, (await d).inserted],
    [1, 1, 1],
  );
  assert.equal(writes.length, 3);
});

Deno.test("groupWrites() never has one partition in two writes at once, even with a slot free", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 3);
  const a = grouped.write([row(0, 1)]);
  const b = grouped.write([row(0, 2)]);
  const c = grouped.write([row(1, 1)]);
  await tick();
  assert.deepEqual(writes.map((w) => w.offsets), [["0:1"], ["1:1"]]);
  writes[1]!.release();
  await c;
  await tick();
  assert.equal(writes.length, 2, "0:2 waits for 0:1, not for a slot");
  writes[0]!.release();
  await a;
  await tick();
  assert.deepEqual(writes[2]!.offsets, ["0:2"]);
  writes[2]!.release();
  assert.equal((await b).inserted, 1);
});

Deno.test("groupWrites() lets no write of a partition overtake an earlier one waiting for it", async () => {
  const { sink, writes } = gatedSink();
  const grouped = groupWrites(sink, 2);
  const first = grouped.write([row(0, 1)]);
  await tick();
  // `both` (partitions 0 and 1) waits for partition 0; `one` (partition 1 alone) has a free slot
  // and a free partition, but must not go before `both`; `two` may.
  const both = grouped.write([row(0, 2), row(1, 1)]);
  const one = grouped.write([row(1, 2)]);
  const two = grouped.write([row(2, 1)]);
  await tick();
  assert.deepEqual(writes.map((w) => w.offsets), [["0:1"], ["2:1"]]);
  writes[1]!.release();
  await two;
  await tick();
  assert.equal(writes.length, 2, "1:2 still waits behind 1:1");
  writes[0]!.release();
  await first;
  await tick();
  assert.deepEqual(writes[2]!.offsets, ["0:2", "1:1"]);
  writes[2]!.release();
  await both;
  await tick();
  assert.deepEqual(writes[3]!.offsets, ["1:2"]);
  writes[3]!.release();
  await one;
});
