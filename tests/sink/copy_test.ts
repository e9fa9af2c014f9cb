import assert from "node:assert/strict";
import fc from "fast-check";
import { AheadEncoder, copyChunks, copyLine } from "../../lib/sink/copy.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
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
  ).map(([row, n, piece]): SinkRow => {
    const r = decodeValue(encode(envelope(row)));
    // Titles up to past a chunk, of multi-byte and astral characters, test the split.
    const title = piece.repeat(Math.ceil(n / piece.length));
    return { ...r, title, kafka_partition: 0, kafka_offset: "1" };
  });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(rowArb, fc.nat({ max: 3 })), { maxLength: 12 }),
      (tagged) => {
        // Rows encoded ahead in up to three batches (0: not ahead), then written in one order.
        const rows = tagged.map(([r]) => r);
        for (const b of [1, 2, 3]) {
          new AheadEncoder().encode(
            tagged.filter(([, t]) => t === b).map(([r]) => r),
          );
        }
        const extra = rows.map((_, i) => i + 1);
        assert.equal(join(copyChunks(rows)), rows.map(copyLine).join(""));
        assert.equal(
          join(copyChunks(rows, extra)),
          rows.map((r, i) => `${copyLine(r).slice(0, -1)}\t${i + 1}\n`).join(
            "",
          ),
        );
        for (const c of copyChunks(rows)) assert.ok(c.byteLength > 0);
      },
    ),
    { numRuns: 100 },
  );
});
