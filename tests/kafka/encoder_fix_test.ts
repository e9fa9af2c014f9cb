import assert from "node:assert/strict";
import fc from "fast-check";
// @ts-types="../../lib/kafka/_encoder_fix.d.ts"
import Encoder from "kafkajs/src/protocol/encoder.js";
import { encoderFixed } from "../../lib/kafka/_encoder_fix.ts";
import { Buffer } from "node:buffer";
// @ts-types="./_kafkajs_protocol.d.ts"
import RecordBatchModule from "kafkajs/src/protocol/recordBatch/v0/index.js";
// @ts-types="./_kafkajs_record.d.ts"
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
// @ts-types="./_kafkajs_decoders.d.ts"
import decodeBatch from "kafkajs/src/protocol/recordBatch/v0/decoder.js";
// @ts-types="./_kafkajs_decoder.d.ts"
import Decoder from "kafkajs/src/protocol/decoder.js";

Deno.test.sanitizer?.({ ops: true, resources: true });

/** The fixed methods, as the untyped encoder has them. */
interface Writer {
  writeVarInt(v: number): Writer;
  writeUVarInt(v: number): Writer;
  writeVarLong(v: unknown): Writer;
  readonly buffer: Uint8Array;
}
const sizeOfVarLong =
  (Encoder as unknown as { sizeOfVarLong(v: unknown): number })
    .sizeOfVarLong;

/** LEB128 of an unsigned value (the protocol's varint and varlong bytes). */
function leb128(u: bigint): number[] {
  const out: number[] = [];
  do {
    const b = Number(u & 0x7fn);
    u >>= 7n;
    out.push(u === 0n ? b : b | 0x80);
  } while (u !== 0n);
  return out;
}
const zigzag32 = (v: number) => BigInt(((v << 1) ^ (v >> 31)) >>> 0);
const zigzag64 = (v: bigint) => BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
const bytes = (write: (w: Writer) => void) => {
  const w = new Encoder() as unknown as Writer;
  write(w);
  return [...w.buffer];
};

Deno.test("the encoder fix is installed", () => {
  assert.equal(encoderFixed(), true);
});

Deno.test("the fixed writeVarInt() and writeUVarInt() write the protocol's bytes", () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
      assert.deepEqual(bytes((w) => w.writeVarInt(v)), leb128(zigzag32(v)));
      assert.deepEqual(
        bytes((w) => w.writeUVarInt(v)),
        leb128(BigInt(v >>> 0)),
      );
    }),
    { numRuns: 2000 },
  );
  for (const v of [0, 1, -1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31)]) {
    assert.deepEqual(bytes((w) => w.writeVarInt(v)), leb128(zigzag32(v)));
  }
});

Deno.test("the fixed writeVarLong() and sizeOfVarLong() match the protocol for every range", () => {
  const check = (v: number | bigint) => {
    const expected = leb128(zigzag64(BigInt(v)));
    assert.deepEqual(bytes((w) => w.writeVarLong(v)), expected, `${v}`);
    assert.equal(sizeOfVarLong(v), expected.length, `${v}`);
  };
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.maxSafeInteger(),
      ),
      check,
    ),
    { numRuns: 2000 },
  );
  for (
    const v of [
      0,
      -0,
      1,
      -1,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      -(2 ** 31) - 1,
      1.5e12,
    ]
  ) check(v);
});

Deno.test("the encoder still grows its buffer for varints past its initial size", () => {
  const w = new Encoder(1) as unknown as Writer;
  const values = Array.from({ length: 300 }, (_, i) => (i * 7919) << 10);
  for (const v of values) w.writeVarInt(v);
  assert.deepEqual([...w.buffer], values.flatMap((v) => leb128(zigzag32(v))));
});

Deno.test("a record batch written with the fix decodes back to its records", async () => {
  const page = Array.from({ length: 300 }, (_, i) => ({
    key: i % 50 === 0 ? null : `lvwiki:${1_000_000_000 + i}`,
    value: JSON.stringify({
      i,
      title: "Rīga — ☃ ".repeat(i % 40),
      pad: "x".repeat(i * 7),
    }),
    headers: { wiki: "lvwiki", rcid: String(1_000_000_000 + i) },
    timestampDelta: i * 1000 * (i % 3 === 0 ? 3_000_000 : 1),
  }));
  const first = 1_700_000_000_000;
  const batch = await RecordBatchModule.RecordBatch({
    records: page.map((r, i) => Record({ ...r, offsetDelta: i })),
    firstTimestamp: first,
    maxTimestamp: first + page.at(-1)!.timestampDelta,
    lastOffsetDelta: page.length - 1,
    transactional: true,
  });
  const decoded = await decodeBatch(new Decoder(Buffer.from(batch.buffer)));
  const text = (b: Uint8Array | null) =>
    b === null ? null : new TextDecoder().decode(b);
  assert.deepEqual(
    decoded.records.map((r) => ({
      key: text(r.key),
      value: text(r.value),
      headers: Object.fromEntries(
        Object.entries(r.headers).map(([k, v]) => [k, text(v)]),
      ),
      offset: r.offset,
      timestamp: r.timestamp,
    })),
    page.map((r, i) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      offset: String(i),
      timestamp: String(first + r.timestampDelta),
    })),
  );
});
