import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
// @ts-types="../../lib/kafka/_kafkajs_internals.d.ts"
import produceV3 from "kafkajs/src/protocol/requests/produce/v3/request.js";
// @ts-types="../../lib/kafka/_kafkajs_internals.d.ts"
import kafkajsCrc32c from "kafkajs/src/protocol/recordBatch/crc32C/index.js";
// @ts-types="../../lib/kafka/_kafkajs_internals.d.ts"
import ProduceRequests from "kafkajs/src/protocol/requests/produce/index.js";
import {
  encodeProduce,
  type ProduceArgs,
  produceEncoderFixed,
} from "../../lib/kafka/_produce_encoder.ts";
import { crc32c } from "../../lib/kafka/_crc32c.ts";
import { ByteWriter } from "../../lib/kafka/_byte_writer.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const T = 1_700_000_000_123;

/** kafkajs's own Produce v3 bytes for `args`, at time T. */
async function kafkajsBytes(args: ProduceArgs): Promise<number[]> {
  const now = Date.now;
  Date.now = () => T;
  try {
    const req = (produceV3 as (a: ProduceArgs) => {
      encode(): Promise<{ buffer: Uint8Array }>;
    })(args);
    return [...(await req.encode()).buffer];
  } finally {
    Date.now = now;
  }
}

function ourBytes(args: ProduceArgs): number[] | undefined {
  const out = encodeProduce(args, () => T);
  return out && [...out.buf.subarray(0, out.offset)];
}

// Any UTF-16 unit, lone surrogates included (both encoders write U+FFFD for those).
const anyChar = fc.integer({ min: 0, max: 0xffff }).map((c) =>
  String.fromCharCode(c)
);
const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: "grapheme", maxLength }),
    fc.string({ unit: anyChar, maxLength }),
  );
const bytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const message = fc.record({
  key: fc.oneof(fc.constant(null), fc.constant(undefined), text(40), bytes),
  value: fc.oneof(fc.constant(null), text(3000), bytes),
  headers: fc.option(
    fc.dictionary(
      text(12),
      fc.oneof(text(30), bytes, fc.array(text(10), { maxLength: 3 })),
    ),
    { nil: undefined },
  ),
}, { requiredKeys: ["key", "value"] });
const args: fc.Arbitrary<ProduceArgs> = fc.record({
  acks: fc.constantFrom(-1, 0, 1),
  timeout: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  transactionalId: fc.option(text(30), { nil: undefined }),
  producerId: fc.oneof(
    fc.constant(-1),
    fc.integer({ min: 0, max: 2 ** 48 }),
    fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String),
  ),
  producerEpoch: fc.integer({ min: 0, max: 32767 }),
  topicData: fc.array(
    fc.record({
      topic: text(20),
      partitions: fc.array(
        fc.record({
          partition: fc.integer({ min: 0, max: 1000 }),
          firstSequence: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          messages: fc.array(message, { minLength: 1, maxLength: 12 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

Deno.test("encodeProduce() writes kafkajs's exact Produce bytes for random requests", async () => {
  await fc.assert(
    fc.asyncProperty(args, async (a) => {
      const ours = ourBytes(a);
      assert.ok(ours, "a plain request is encoded here");
      assert.deepEqual(ours, await kafkajsBytes(a));
    }),
    { numRuns: 400 },
  );
});

Deno.test("encodeProduce() matches kafkajs on a page of 500 events like the poller's", async () => {
  const row = { type: "edit", title: "Rīga", comment: "☃ ".repeat(200), n: 0 };
  const messages = Array.from({ length: 500 }, (_, i) => ({
    key: `lvwiki:${4_000_000 + i}`,
    value: JSON.stringify({ ...row, n: i }),
    headers: { wiki: "lvwiki", rcid: String(90_000_000 + i) },
  }));
  const a: ProduceArgs = {
    acks: -1,
    timeout: 30_000,
    transactionalId: "wikistream-producer",
    producerId: "4001",
    producerEpoch: 3,
    topicData: [
      {
        topic: "wikistream.rc",
        partitions: [0, 1, 2].map((p) => ({
          partition: p,
          firstSequence: 1500 * p,
          messages: messages.filter((_, i) => i % 3 === p),
        })),
      },
      {
        topic: "wikistream.rc.checkpoints",
        partitions: [{
          partition: 0,
          firstSequence: 7,
          messages: [{ key: "lvwiki", value: "{}" }],
        }],
      },
    ],
  };
  assert.deepEqual(ourBytes(a), await kafkajsBytes(a));
});

/** Lone and paired surrogates and multi-byte characters around the 32-unit byte-by-byte limit. */
function edgeStrings(): string[] {
  const odd = "\uD83D \uDE00 \uD83D\uDE00 \uDE00\uD83D é ☃ \u0000".split(" ");
  const strings = [""];
  for (const len of [31, 32, 33, 200]) {
    for (const fill of ["a", "ж", "\uDE00"]) {
      for (const c of odd) {
        for (const at of new Set([0, 30, 31, 32, 33, len - 1, len])) {
          if (at > len) continue;
          const s = fill.repeat(len);
          strings.push(s.slice(0, at) + c + s.slice(at));
        }
      }
    }
  }
  return strings;
}

/** A transactional Produce request of `messages` to partition 0 of topic "t". */
function txRequest(
  messages: ProduceArgs["topicData"][0]["partitions"][0]["messages"],
): ProduceArgs {
  return {
    acks: -1,
    timeout: 1000,
    transactionalId: "tx",
    producerId: 5,
    producerEpoch: 0,
    topicData: [{ topic: "t", partitions: [{ partition: 0, messages }] }],
  };
}

/** Kafka's zigzag varint of a non-negative `v`. */
function zigzag(v: number): number[] {
  const out = [];
  let z = v * 2;
  for (; z >= 0x80; z = Math.floor(z / 128)) out.push((z & 0x7f) | 0x80);
  out.push(z);
  return out;
}

Deno.test("ByteWriter writes strings as Buffer's UTF-8, growing from any size", () => {
  for (const initial of [1, 7, 64, 4096]) {
    for (const s of edgeStrings()) {
      const w = new ByteWriter(initial);
      w.int8(7);
      w.varBytes(s);
      w.string(s);
      const b = [...Buffer.from(s)];
      const n = [b.length >> 8, b.length & 0xff];
      const expected = [7, ...zigzag(b.length), ...b, ...n, ...b];
      assert.deepEqual([...w.bytes()], expected, JSON.stringify(s));
    }
  }
});

Deno.test("encodeProduce() matches kafkajs on strings around the 32-unit byte-by-byte limit", async () => {
  // In keys, values and header values (the random requests' header values stay under 32 units).
  const strings = edgeStrings();
  const messages = strings.map((s, i) => ({
    key: s,
    value: strings[(i + 1) % strings.length]!,
    headers: {
      [s.slice(0, 40)]: s,
      h: [s, "", strings[(i + 2) % strings.length]!],
    },
  }));
  for (let i = 0; i < messages.length; i += 50) {
    const a = txRequest(messages.slice(i, i + 50));
    assert.deepEqual(ourBytes(a), await kafkajsBytes(a));
  }
});

Deno.test("encodeProduce() leaves compressed or timestamped requests to kafkajs", () => {
  const base: ProduceArgs = {
    acks: -1,
    timeout: 1000,
    topicData: [{
      topic: "t",
      partitions: [{ partition: 0, messages: [{ key: "k", value: "v" }] }],
    }],
  };
  assert.ok(encodeProduce(base));
  assert.equal(encodeProduce({ ...base, compression: 1 }), undefined);
  const stamped = structuredClone(base);
  stamped.topicData[0]!.partitions[0]!.messages[0]!.timestamp = String(T);
  assert.equal(encodeProduce(stamped), undefined);
  const plainArray = structuredClone(base);
  plainArray.topicData[0]!.partitions[0]!.messages[0]!.value = new Uint8Array([
    1,
    2,
  ]);
  assert.equal(
    encodeProduce(plainArray),
    undefined,
    "kafkajs writes a non-Buffer as String(v)",
  );
  const longId = { ...base, transactionalId: "x".repeat(20_000) };
  assert.equal(
    encodeProduce(longId),
    undefined,
    "past an int16 length kafkajs throws",
  );
});

Deno.test("the Produce hook is installed and answers with the fast encoder", async () => {
  assert.equal(produceEncoderFixed(), true);
  const a = txRequest([{ key: "k", value: "v" }]);
  const build = (ProduceRequests as {
    protocol(o: { version: number }): (a: ProduceArgs) => {
      request: {
        apiVersion: number;
        encode(): Promise<{ buffer: Uint8Array }>;
      };
    };
  }).protocol({ version: 7 });
  const now = Date.now;
  Date.now = () => T;
  try {
    const built = build(a);
    assert.equal(built.request.apiVersion, 7);
    assert.deepEqual(
      [...(await built.request.encode()).buffer],
      await kafkajsBytes(a),
    );
  } finally {
    Date.now = now;
  }
});

Deno.test("crc32c() is CRC-32C: the check value, and kafkajs's answer on random bytes", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => {
      assert.equal(
        crc32c(b),
        (kafkajsCrc32c as (b: Uint8Array) => number)(Buffer.from(b)),
      );
    }),
    { numRuns: 500 },
  );
});
