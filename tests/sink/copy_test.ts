import assert from "node:assert/strict";
import fc from "fast-check";
import { AheadEncoder, copyChunks, copyLine } from "../../lib/sink/copy.ts";
import { parseValue, rowJson, validateValue } from "../../lib/sink/decode.ts";
import type { SinkRow } from "../../lib/sink/sink.ts";
import { encode, envelope, validRow } from "../_arbitraries.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function join(chunks: Iterable<Uint8Array>): string {
  let out = "";
  for (const c of chunks) out += utf8.decode(c);
  return out;
}

Deno.test("copyChunks() encodes exactly the rows' COPY lines as UTF-8, whatever splits the chunks", () => {
  const rowArb = fc.tuple(
    validRow,
    fc.nat({ max: 300_000 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 6 }),
  ).map(([row, n, piece]): [SinkRow, Uint8Array | undefined] => {
    const value = encode(envelope(row));
    const parsed = parseValue(value);
    const r = validateValue(parsed);
    // Titles up to past a chunk, of multi-byte and astral characters, test the split.
    const title = piece.repeat(Math.ceil(n / piece.length));
    // A row decoded from its record: encoded ahead, its raw JSON is the record's bytes.
    const source = { topic: "t", key: null, value, headers: {} };
    return [
      { ...r, title, kafka_partition: 0, kafka_offset: "1", source },
      rowJson(parsed, value),
    ];
  });
  let viaRecord = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(rowArb, fc.nat({ max: 3 })), { maxLength: 12 }),
      (tagged) => {
        // Rows encoded ahead in up to three batches (0: not ahead), then written in one order.
        const rows = tagged.map(([[r]]) => r);
        const lines = rows.map(copyLine);
        for (const b of [1, 2, 3]) {
          const ahead = tagged.filter(([, t]) => t === b).map(([r]) => r);
          viaRecord += ahead.filter(([, raw]) => raw !== undefined).length;
          new AheadEncoder().encode(
            ahead.map(([r]) => r),
            ahead.map(([, raw]) => raw),
          );
        }
        const extra = rows.map((_, i) => i + 1);
        assert.equal(join(copyChunks(rows)), lines.join(""));
        assert.deepEqual(rows.map(copyLine), lines);
        assert.equal(
          join(copyChunks(rows, extra)),
          lines.map((l, i) => `${l.slice(0, -1)}\t${i + 1}\n`).join(""),
        );
        for (const c of copyChunks(rows)) assert.ok(c.byteLength > 0);
      },
    ),
    { numRuns: 100 },
  );
  assert.ok(
    viaRecord > 100,
    `${viaRecord} rows had their raw JSON from the record`,
  );
});
