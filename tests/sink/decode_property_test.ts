/**
 * Property-based tests of the consumer's decoder (lib/sink/decode.ts) and the normaliser behind it
 * (lib/schemas/wikimedia.ts ApiRowSchema -> lib/source/normalise.ts): every input either becomes a correct row or
 * a DecodeError with a reason; nothing else throws.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeValue, MAX_VALUE_BYTES } from "../../lib/sink/decode.ts";
import { DecodeError } from "../../lib/core/errors.ts";
import { type ChangeRow, normaliseApiRow } from "../../lib/source/normalise.ts";
import { ApiRowSchema } from "../../lib/schemas/wikimedia.ts";
import {
  anyUnit,
  encode,
  envelope,
  TYPES,
  validRow,
  wrongValue,
} from "../_arbitraries.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const RUNS = Number(Deno.env.get("PROPERTY_RUNS") ?? 400);
const params = { numRuns: RUNS, seed: seedFromEnv() };
const REASONS = new Set([
  "empty",
  "too_large",
  "not_json",
  "bad_envelope",
  "bad_text",
  "bad_row",
]);

/** Runs decodeValue; returns the row or the DecodeError, and fails on anything else thrown. */
function tryDecode(value: Uint8Array | null): ChangeRow | DecodeError {
  try {
    return decodeValue(value);
  } catch (err) {
    if (!(err instanceof DecodeError)) {
      throw new Error(`decodeValue() threw ${(err as Error)?.name}`, {
        cause: err,
      });
    }
    assert.ok(REASONS.has(err.reason), `known reason: ${err.reason}`);
    assert.match(err.message, /^Cannot decode record: /);
    return err;
  }
}

/** Is every string in v (keys included) storable in PostgreSQL text/jsonb? */
function storable(v: unknown): boolean {
  if (typeof v === "string") return !v.includes("\0") && v.isWellFormed();
  if (Array.isArray(v)) return v.every(storable);
  if (v && typeof v === "object") {
    return Object.entries(v).every(([k, x]) => storable(k) && storable(x));
  }
  return true;
}

function flagSet(v: unknown): boolean {
  return v === true || v === "";
}

function idOrNull(v: unknown): string | null {
  if (v === undefined) return null;
  const s = BigInt(String(v)).toString();
  return s === "0" ? null : s;
}

/** Checks a decoded row against the source row, field by field. */
function assertCorrect(got: ChangeRow, src: Record<string, unknown>): void {
  const type = src.type as string;
  const isNew = type === "new" || flagSet(src.new);
  const isLog = type === "log";
  const userHidden = flagSet(src.userhidden);
  assert.equal(got.wiki, "testwiki");
  assert.equal(got.server_name, "test.example.org");
  assert.equal(got.rcid, BigInt(String(src.rcid)).toString());
  assert.equal(got.change_type, type);
  assert.equal(got.namespace, src.ns ?? null);
  assert.equal(got.title, src.title ?? null);
  assert.equal(got.page_id, idOrNull(src.pageid));
  assert.equal(got.rev_id, idOrNull(src.revid));
  assert.equal(got.old_rev_id, isNew ? null : idOrNull(src.old_revid));
  assert.equal(got.user_name, userHidden ? null : src.user ?? null);
  assert.equal(got.user_id, userHidden ? null : idOrNull(src.userid));
  assert.equal(got.user_hidden, userHidden);
  assert.equal(got.is_anon, flagSet(src.anon));
  assert.equal(got.is_temp, flagSet(src.temp));
  assert.equal(got.is_bot, flagSet(src.bot));
  assert.equal(got.is_minor, flagSet(src.minor));
  assert.equal(got.is_new, isNew);
  assert.equal(got.old_len, isNew || isLog ? null : src.oldlen ?? null);
  assert.equal(got.new_len, isLog ? null : src.newlen ?? null);
  assert.equal(
    got.event_time,
    new Date(String(src.timestamp)).toISOString(),
  );
  assert.equal(
    got.comment,
    flagSet(src.commenthidden) ? null : src.comment ?? null,
  );
  assert.equal(got.comment_hidden, flagSet(src.commenthidden));
  assert.equal(got.action_hidden, flagSet(src.actionhidden));
  assert.equal(got.sha1, flagSet(src.sha1hidden) ? null : src.sha1 ?? null);
  assert.deepEqual(got.tags, src.tags ?? []);
  assert.equal(got.log_id, isLog ? idOrNull(src.logid) : null);
  assert.equal(got.log_type, isLog ? src.logtype ?? null : null);
  assert.equal(got.log_action, isLog ? src.logaction ?? null : null);
  if (!isLog) assert.equal(got.log_params, null);
  else if (src.logparams !== undefined) {
    // Compared after a JSON round trip, as the record travelled (-0 arrives as 0).
    assert.deepEqual(got.log_params, JSON.parse(JSON.stringify(src.logparams)));
  }
  assert.deepEqual(got.raw, JSON.parse(JSON.stringify(src)));
  assert.ok(storable(got), "every string of the row is storable");
}

Deno.test("decodeValue() turns every valid row into the correct columns", () => {
  fc.assert(
    fc.property(validRow, (row) => {
      const got = tryDecode(encode(envelope(row)));
      assert.ok(!(got instanceof DecodeError), `decodes: ${String(got)}`);
      assertCorrect(got, row);
    }),
    params,
  );
});

Deno.test("decodeValue() keeps 64-bit ids past 2^53 exactly, and rejects ids past 2^63-1", () => {
  const big = fc.bigInt({ min: 2n ** 53n + 1n, max: 2n ** 63n - 1n });
  fc.assert(
    fc.property(validRow, big, big, (row, rcid, revid) => {
      const src = { ...row, rcid: String(rcid), revid: String(revid) };
      const got = tryDecode(encode(envelope(src)));
      assert.ok(!(got instanceof DecodeError));
      assert.equal(got.rcid, rcid.toString());
      assert.equal(got.rev_id, revid.toString());
    }),
    params,
  );
  fc.assert(
    fc.property(
      validRow,
      fc.bigInt({ min: 2n ** 63n, max: 10n ** 19n - 1n }),
      (row, rcid) => {
        const got = tryDecode(encode(envelope({ ...row, rcid: String(rcid) })));
        assert.ok(got instanceof DecodeError);
        assert.equal(got.reason, "bad_row");
      },
    ),
    params,
  );
  // A JSON number past 2^53 has already lost digits: refused rather than stored wrong.
  const got = tryDecode(
    new TextEncoder().encode(
      '{"v":1,"source":"action_api","wiki":"w","server_name":"s",' +
        '"fetched_at":"2024-04-26T12:00:00Z",' +
        '"row":{"type":"edit","rcid":9007199254740993,"timestamp":"2024-04-26T12:00:00Z"}}',
    ),
  );
  assert.ok(got instanceof DecodeError);
  assert.equal(got.reason, "bad_row");
});

Deno.test("decodeValue() rejects a wrong type in any validated field as bad_row", () => {
  const field = fc.constantFrom(...Object.keys(wrongValue));
  fc.assert(
    fc.property(
      validRow,
      field.chain((f) => fc.tuple(fc.constant(f), wrongValue[f]!)),
      (row, [f, value]) => {
        const got = tryDecode(encode(envelope({ ...row, [f]: value })));
        assert.ok(got instanceof DecodeError, `${f}=${JSON.stringify(value)}`);
        assert.equal(got.reason, "bad_row");
      },
    ),
    params,
  );
});

Deno.test("decodeValue() rejects a row missing type, rcid or timestamp as bad_row", () => {
  fc.assert(
    fc.property(
      validRow,
      fc.subarray(["type", "rcid", "timestamp"], { minLength: 1 }),
      (row, drop) => {
        const src = { ...row };
        for (const k of drop) delete src[k];
        const got = tryDecode(encode(envelope(src)));
        assert.ok(got instanceof DecodeError);
        assert.equal(got.reason, "bad_row");
      },
    ),
    params,
  );
});

Deno.test("decodeValue() turns unicode edge cases into a row or bad_text, never a corrupt row", () => {
  const nasty = fc.string({ unit: anyUnit, maxLength: 30 });
  const field = fc.constantFrom("title", "user", "comment", "logtype", "extra");
  fc.assert(
    fc.property(validRow, field, nasty, (row, f, s) => {
      const src = { ...row, [f]: s, ...(f === "extra" ? { [s]: 1 } : {}) };
      const got = tryDecode(encode(envelope(src)));
      if (!storable(s)) {
        assert.ok(got instanceof DecodeError, "unstorable text is refused");
        assert.equal(got.reason, "bad_text");
      } else {
        assert.ok(!(got instanceof DecodeError), String(got));
        assertCorrect(got, src);
      }
    }),
    params,
  );
});

Deno.test("decodeValue() handles huge strings: stored whole below the limit, too_large above", () => {
  fc.assert(
    fc.property(
      validRow,
      fc.integer({ min: 10_000, max: 400_000 }),
      fc.constantFrom("é", "a", "𝔘", "\\", "\t"),
      (row, n, unit) => {
        const src = { ...row, comment: unit.repeat(n) };
        const bytes = encode(envelope(src));
        const got = tryDecode(bytes);
        if (bytes.byteLength > MAX_VALUE_BYTES) {
          assert.ok(got instanceof DecodeError);
          assert.equal(got.reason, "too_large");
        } else {
          assert.ok(!(got instanceof DecodeError));
          assertCorrect(got, src);
        }
      },
    ),
    { ...params, numRuns: Math.min(RUNS, 40) },
  );
});

Deno.test("decodeValue() never throws anything but DecodeError on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      tryDecode(bytes);
    }),
    params,
  );
  assert.equal((tryDecode(null) as DecodeError).reason, "empty");
  assert.equal(
    (tryDecode(new Uint8Array([0x7b, 0xff, 0x7d])) as DecodeError).reason,
    "not_json",
  );
});

Deno.test("decodeValue() never throws anything but DecodeError on arbitrary JSON", () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  const partial = fc.record({
    v: fc.oneof(fc.constant(1), json),
    source: fc.oneof(fc.constant("action_api"), json),
    wiki: fc.oneof(fc.constant("w"), json),
    server_name: fc.oneof(fc.constant("s"), json),
    fetched_at: fc.oneof(fc.constant("2024-04-26T12:00:00Z"), json),
    row: fc.oneof(
      fc.dictionary(
        fc.constantFrom(...Object.keys(wrongValue), "x"),
        json,
      ),
      json,
    ),
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(fc.oneof(json, partial), (value) => {
      const got = tryDecode(encode(value));
      if (!(got instanceof DecodeError)) {
        // Whatever decoded must satisfy the schema it came through.
        const row = (value as { row: Record<string, unknown> }).row;
        assert.ok(ApiRowSchema.safeParse(row).success);
        assert.ok(storable(got));
      }
    }),
    params,
  );
});

Deno.test("decodeValue() refuses nesting deeper than it can check, without a stack overflow", () => {
  for (const depth of [10, 62, 64, 5_000]) {
    const logparams = JSON.parse("[".repeat(depth) + "]".repeat(depth));
    const got = tryDecode(encode(envelope({
      type: "log",
      rcid: 1,
      timestamp: "2024-04-26T12:00:00Z",
      logparams,
    })));
    if (depth <= 62) assert.ok(!(got instanceof DecodeError));
    else assert.equal((got as DecodeError).reason, "bad_text");
  }
});

Deno.test("ApiRowSchema and normaliseApiRow() never throw on arbitrary objects", () => {
  const row = fc.oneof(
    validRow,
    fc.dictionary(
      fc.constantFrom(...Object.keys(wrongValue), "logparams", "extra"),
      fc.jsonValue({ maxDepth: 3 }),
    ),
    fc.record({
      type: fc.constantFrom(...TYPES),
      rcid: fc.jsonValue(),
      timestamp: fc.jsonValue(),
    }),
  );
  fc.assert(
    fc.property(row, (raw) => {
      const parsed = ApiRowSchema.safeParse(raw);
      if (parsed.success) {
        const out = normaliseApiRow(parsed.data, {
          wiki: "w",
          serverName: "s",
        }, raw as Record<string, unknown>);
        assert.match(out.rcid, /^\d+$/);
        assert.ok(!Number.isNaN(Date.parse(out.event_time)));
      }
    }),
    params,
  );
});

Deno.test("decodeValue() on EventStreams envelopes: a row or a DecodeError, whatever the timestamp", () => {
  const event = fc.record({
    meta: fc.record({ id: fc.uuid() }),
    id: fc.oneof(fc.constant(null), fc.nat()),
    type: fc.constantFrom(...TYPES),
    timestamp: fc.oneof(
      fc.nat({ max: 253_402_300_799 }),
      fc.integer({ min: 253_402_300_800, max: Number.MAX_SAFE_INTEGER }),
      fc.double(),
    ),
    namespace: fc.oneof(fc.integer(), fc.maxSafeInteger()),
    wiki: fc.constant("testwiki"),
    server_name: fc.constant("test.example.org"),
  });
  fc.assert(
    fc.property(event, (e) => {
      const got = tryDecode(
        encode({ ...envelope(e), source: "eventstreams" }),
      );
      if (!(got instanceof DecodeError)) {
        assert.equal(
          got.event_time,
          new Date(e.timestamp * 1000).toISOString(),
        );
        const year = new Date(got.event_time).getUTCFullYear();
        assert.ok(year >= 1 && year <= 9999, got.event_time);
      }
    }),
    params,
  );
});

function seedFromEnv(): number | undefined {
  const s = Deno.env.get("PROPERTY_SEED");
  return s ? Number(s) : undefined;
}
