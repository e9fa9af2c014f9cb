import assert from "node:assert/strict";
import fc from "fast-check";
import { Partitioners } from "kafkajs";
import { fastDefaultPartitioner } from "../../lib/kafka/_partitioner.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const metadata = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 1,
    replicas: [1],
    isr: [1],
  }));

Deno.test("fastDefaultPartitioner() picks kafkajs's DefaultPartitioner's partition for every key", () => {
  const theirs = Partitioners.DefaultPartitioner();
  const ours = fastDefaultPartitioner();
  const check = (key: string, partitions: number) => {
    const args = {
      topic: "t",
      partitionMetadata: metadata(partitions),
      message: { key, value: "v" },
    };
    assert.equal(ours(args), theirs(args), `key ${JSON.stringify(key)}`);
  };
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 80 }),
        fc.string({ unit: "grapheme", maxLength: 40 }),
        fc.string({ unit: "binary", maxLength: 40 }),
      ),
      fc.integer({ min: 1, max: 64 }),
      check,
    ),
    { numRuns: 5000 },
  );
  // The keys the producer writes: wiki:rcid, a wiki id, a reject key.
  for (
    const key of ["enwiki:123456789", "lvwiki", "lvwiki:reject", "", "ā", "😀x"]
  ) {
    for (const n of [1, 3, 12]) check(key, n);
  }
});

Deno.test("fastDefaultPartitioner() keeps an explicit partition and spreads keyless records", () => {
  const ours = fastDefaultPartitioner();
  const partitionMetadata = metadata(3);
  assert.equal(
    ours({
      topic: "t",
      partitionMetadata,
      message: { key: "k", value: "v", partition: 2 },
    }),
    2,
  );
  const seen = new Set<number>();
  for (let i = 0; i < 6; i++) {
    seen.add(
      ours({
        topic: "t",
        partitionMetadata,
        message: { key: null, value: "v" },
      }),
    );
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
});
