/**
 * The fast path of lib/schemas/fast_api_row.ts never accepts what the zod schemas refuse, and
 * what it accepts comes out exactly as zod would output it.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { fastApiRow, fastEnvelope } from "../../lib/schemas/fast_api_row.ts";
import { ApiRowSchema } from "../../lib/schemas/wikimedia.ts";
import { EnvelopeSchema } from "../../lib/schemas/envelope.ts";
import { envelope, timestamp, validRow, wrongValue } from "../_arbitraries.ts";
import { replayedRecords } from "../integration/_consumer_fixture.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const RUNS = Number(Deno.env.get("PROPERTY_RUNS") ?? 400);

/** A row as it arrives: through JSON. */
function viaJson(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

/** fast => zod accepts, with the same output. Returns whether the fast path took it. */
function assertSubsetOfZod(row: unknown): boolean {
  const fast = fastApiRow(row);
  const zod = ApiRowSchema.safeParse(structuredClone(row));
  if (fast === undefined) return false;
  assert.ok(
    zod.success,
    `zod refuses what the fast path took: ${JSON.stringify(row)}`,
  );
  assert.deepEqual(fast, zod.data);
  return true;
}

/** A valid row with one field replaced by a wrong value (or by a mangled timestamp). */
const brokenRow = fc.tuple(
  validRow,
  fc.constantFrom(...Object.keys(wrongValue)),
).chain(([row, key]) =>
  wrongValue[key]!.map((bad) => ({ ...row, [key]: bad }))
);

const nearTimestamp = fc.oneof(
  timestamp,
  fc.tuple(
    fc.integer({ min: 0, max: 9999 }),
    fc.integer({ min: 0, max: 13 }),
    fc.integer({ min: 0, max: 32 }),
    fc.integer({ min: 0, max: 25 }),
    fc.integer({ min: 0, max: 61 }),
    fc.integer({ min: 0, max: 61 }),
    fc.constantFrom("Z", ".5Z", ".123Z", ".1234Z", "+00:00", "z", ""),
  ).map(([y, mo, d, h, mi, s, tail]) =>
    `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}:${p(s)}${tail}`
  ),
);

function p(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

Deno.test("fastApiRow() outputs valid generated rows exactly as ApiRowSchema does", () => {
  let taken = 0;
  fc.assert(
    fc.property(validRow, (row) => {
      if (assertSubsetOfZod(viaJson(row))) taken++;
    }),
    { numRuns: RUNS },
  );
  assert.equal(taken, RUNS, "the fast path takes every valid generated row");
});

Deno.test("fastApiRow() takes every recorded fixture row", () => {
  for (const r of replayedRecords(184)) {
    const row = (JSON.parse(r.value) as { row: unknown }).row;
    assert.ok(assertSubsetOfZod(row), `fast path takes rcid ${r.rcid}`);
  }
});

Deno.test("fastApiRow() never takes a row ApiRowSchema refuses", () => {
  fc.assert(
    fc.property(brokenRow, (row) => {
      assertSubsetOfZod(viaJson(row));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fastApiRow() timestamps: a subset of what ApiRowSchema accepts", () => {
  let taken = 0;
  fc.assert(
    fc.property(validRow, nearTimestamp, (row, ts) => {
      if (assertSubsetOfZod(viaJson({ ...row, timestamp: ts }))) taken++;
    }),
    { numRuns: RUNS * 5 },
  );
  assert.ok(taken > 0);
  for (
    const ts of [
      "2021-02-29T00:00:00Z",
      "2020-04-31T00:00:00Z",
      "2020-01-01T24:00:00Z",
    ]
  ) {
    assert.equal(
      fastApiRow({ type: "edit", rcid: 1, timestamp: ts }),
      undefined,
      ts,
    );
  }
  assert.ok(
    fastApiRow({ type: "edit", rcid: 1, timestamp: "2020-02-29T23:59:59Z" }),
  );
});

Deno.test("fastApiRow() ids: leading zeros dropped, nothing above 2^63 - 1", () => {
  assert.equal(
    fastApiRow({
      type: "edit",
      rcid: "0007",
      timestamp: "2020-01-01T00:00:00Z",
    })?.rcid,
    "7",
  );
  assert.equal(
    fastApiRow({
      type: "edit",
      rcid: "9223372036854775808",
      timestamp: "2020-01-01T00:00:00Z",
    }),
    undefined,
  );
  assert.equal(
    fastApiRow({
      type: "edit",
      rcid: 2 ** 53,
      timestamp: "2020-01-01T00:00:00Z",
    }),
    undefined,
  );
});

Deno.test("fastEnvelope() never takes an envelope EnvelopeSchema refuses, and outputs the same", () => {
  const field = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      "",
      "action_api",
      "eventstreams",
      "x",
      1,
      null,
      true,
      [],
      {},
    ),
    nearTimestamp,
  );
  fc.assert(
    fc.property(
      fc.record({
        v: fc.constantFrom(1, 2, "1"),
        source: field,
        wiki: field,
        server_name: field,
        fetched_at: field,
        row: fc.constantFrom({}, { a: 1 }, [], null, "row"),
      }, { requiredKeys: [] }),
      (partial) => {
        const env = viaJson({ ...envelope({}), ...partial, extra: 1 });
        const fast = fastEnvelope(env);
        const zod = EnvelopeSchema.safeParse(env);
        if (fast === undefined) return;
        assert.ok(
          zod.success,
          `zod refuses what the fast path took: ${JSON.stringify(env)}`,
        );
        assert.deepEqual(fast, zod.data);
      },
    ),
    { numRuns: RUNS * 2 },
  );
  assert.ok(fastEnvelope(viaJson(envelope({ rcid: 1 }))));
});
