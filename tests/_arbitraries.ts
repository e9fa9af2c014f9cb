/** @module fast-check arbitraries for Action API rows and Kafka envelopes, valid and broken. */
import fc from "fast-check";
import { KNOWN_KEYS } from "../lib/source/normalise.ts";

/** Row types MediaWiki emits. */
export const TYPES = ["edit", "new", "log", "categorize", "external"] as const;

/** Any UTF-16 code unit, lone surrogates and NUL included. */
export const anyUnit: fc.Arbitrary<string> = fc.integer({
  min: 0,
  max: 0xffff,
}).map((n) => String.fromCharCode(n));

/** Text as MediaWiki serves it: any well-formed unicode without NUL. */
export const text: fc.Arbitrary<string> = fc.string({
  unit: "binary",
  maxLength: 40,
}).filter((s) => !s.includes("\0"));

/** An id as a JSON number (safe integer) or a decimal string up to 2^63-1, zero included. */
export const id: fc.Arbitrary<number | string> = fc.oneof(
  fc.constant(0),
  fc.nat(),
  fc.maxSafeNat(),
  fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }).map(String),
);

/** A MediaWiki timestamp: ISO-8601 with Z, seconds precision, years 1-9999. */
export const timestamp: fc.Arbitrary<string> = fc.date({
  min: new Date("0001-01-01T00:00:00Z"),
  max: new Date("9999-12-31T23:59:59Z"),
  noInvalidDate: true,
}).map((d) => d.toISOString().replace(/\.\d{3}Z$/, "Z"));

/** A fv2 or fv1 flag that means "set", or false. */
const flag = fc.constantFrom(true, false, "");

/** Lengths the table can hold (integer columns). */
const length = fc.integer({ min: 0, max: 2 ** 31 - 1 });

/** Keys that are not MediaWiki fields (extra, unknown keys are kept in `raw`). */
export const extraKey: fc.Arbitrary<string> = fc.string({
  unit: "binary",
  minLength: 1,
  maxLength: 12,
}).filter((k) =>
  !k.includes("\0") && !KNOWN.has(k) && k !== "__proto__" &&
  k !== "constructor"
);

/** A valid `list=recentchanges` row: every optional field maybe present, plus extra keys. */
export const validRow: fc.Arbitrary<Record<string, unknown>> = fc.record({
  type: fc.constantFrom(...TYPES),
  rcid: id,
  timestamp,
  ns: fc.integer({ min: -2, max: 2 ** 31 - 1 }),
  title: text,
  pageid: id,
  revid: id,
  old_revid: id,
  user: text,
  userid: id,
  oldlen: length,
  newlen: length,
  comment: text,
  tags: fc.array(text, { maxLength: 4 }),
  sha1: fc.stringMatching(/^[0-9a-f]{40}$/),
  logid: id,
  logtype: text,
  logaction: text,
  logparams: fc.jsonValue({ maxDepth: 3 }),
  anon: flag,
  temp: flag,
  bot: flag,
  new: flag,
  minor: flag,
  redirect: flag,
  userhidden: flag,
  commenthidden: flag,
  actionhidden: flag,
  sha1hidden: flag,
  suppressed: flag,
}, { requiredKeys: ["type", "rcid", "timestamp"] }).chain((row) =>
  fc.dictionary(extraKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }).map(
    (extra) => ({ ...extra, ...row }),
  )
);

/** Wraps a row in the envelope the producer publishes. */
export function envelope(
  row: unknown,
  wiki = "testwiki",
  serverName = "test.example.org",
): Record<string, unknown> {
  return {
    v: 1,
    source: "action_api",
    wiki,
    server_name: serverName,
    fetched_at: "2024-04-26T12:00:00.000Z",
    row,
  };
}

/** JSON-encodes a value as a record value. */
export function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Values that are the wrong type for each validated field (never valid for it). */
export const wrongValue: Record<string, fc.Arbitrary<unknown>> = {
  type: fc.oneof(
    text.filter((s) => !(TYPES as readonly string[]).includes(s)),
    fc.integer(),
    fc.constant(null),
  ),
  rcid: fc.oneof(
    fc.integer({ max: -1 }),
    fc.double({ noInteger: true }),
    fc.stringMatching(/^-?[0-9]*[^0-9]+[0-9]*$/),
    fc.bigInt({ min: 2n ** 63n, max: 10n ** 19n - 1n }).map(String),
    fc.constant(""),
    fc.constant(null),
    fc.boolean(),
  ),
  timestamp: fc.oneof(
    fc.constantFrom(
      "not a time",
      "",
      "2024-13-01T00:00:00Z",
      "20240426120000",
      "0000-01-01T00:00:00Z",
      "0001-01-01T00:30:00+01:00",
    ),
    fc.integer(),
    fc.constant(null),
  ),
  ns: fc.oneof(
    text,
    fc.double({ noInteger: true }),
    fc.boolean(),
    fc.integer({ min: 2 ** 31, max: 2 ** 52 }),
  ),
  title: fc.oneof(fc.integer(), fc.boolean(), fc.constant({})),
  userid: fc.oneof(fc.integer({ max: -1 }), fc.constant("abc"), fc.boolean()),
  oldlen: fc.oneof(
    fc.integer({ max: -1 }),
    text,
    fc.constant(2 ** 60),
    fc.integer({ min: 2 ** 31, max: 2 ** 52 }),
  ),
  tags: fc.oneof(text, fc.array(fc.integer(), { minLength: 1 })),
  bot: fc.oneof(fc.integer(), text.filter((s) => s !== "")),
  userhidden: fc.oneof(fc.integer(), fc.constant("yes")),
};

const KNOWN = KNOWN_KEYS;
