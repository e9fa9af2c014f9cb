/**
 * @module A fast path for the two hottest schemas: plain checks that accept a subset of what
 * `EnvelopeSchema` and `ApiRowSchema` accept and return the same output. Anything the fast path
 * is unsure of returns `undefined`, and the zod schema then decides (and says why it refuses).
 * tests/schemas/fast_api_row_test.ts checks the equivalence on generated rows.
 */
import type { Envelope } from "./envelope.ts";
import { type ApiRow, FLAG_KEYS, ID_KEYS } from "./wikimedia.ts";

const TYPES = new Set(["edit", "new", "log", "categorize", "external"]);
const SOURCES = new Set(["action_api", "eventstreams"]);
const STRING_KEYS = [
  "title",
  "user",
  "comment",
  "sha1",
  "logtype",
  "logaction",
];
const INT4_KEYS = ["ns"];
const LENGTH_KEYS = ["oldlen", "newlen"];
/** UTC with whole seconds or milliseconds: what MediaWiki and `toISOString()` write. */
const UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z$/;
/** A decimal id of at most 19 digits; 19 digits must also be at most 2^63 - 1. */
const DECIMAL_ID = /^\d{1,19}$/;
const MAX_ID = "9223372036854775807";

/** The envelope when it is plainly valid, else undefined (ask `EnvelopeSchema`). */
export function fastEnvelope(v: unknown): Envelope | undefined {
  if (!isPlainObject(v)) return undefined;
  const { source, wiki, server_name, fetched_at, row } = v;
  if (v.v !== 1 || typeof source !== "string" || !SOURCES.has(source)) {
    return undefined;
  }
  if (typeof wiki !== "string" || wiki === "") return undefined;
  if (typeof server_name !== "string" || server_name === "") return undefined;
  if (!isUtc(fetched_at) || !isPlainObject(row)) return undefined;
  return {
    v: 1,
    source: source as Envelope["source"],
    wiki,
    server_name,
    fetched_at,
    row,
  };
}

/** The row as `ApiRowSchema` would output it when it is plainly valid, else undefined. */
export function fastApiRow(v: unknown): ApiRow | undefined {
  if (!isPlainObject(v)) return undefined;
  if (typeof v.type !== "string" || !TYPES.has(v.type)) return undefined;
  if (v.rcid === undefined || !isUtc(v.timestamp)) return undefined;
  const y = Number(v.timestamp.slice(0, 4));
  if (y < 1) return undefined;
  const out: Record<string, unknown> = { type: v.type, timestamp: v.timestamp };
  for (const k of ID_KEYS) {
    const x = v[k];
    if (x === undefined) continue;
    const id = fastId(x);
    if (id === undefined) return undefined;
    out[k] = id;
  }
  for (const k of FLAG_KEYS) {
    const x = v[k];
    if (x === undefined) continue;
    if (x !== true && x !== false && x !== "") return undefined;
    out[k] = x !== false;
  }
  for (const k of STRING_KEYS) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== "string") return undefined;
    out[k] = x;
  }
  for (const k of INT4_KEYS) {
    if (!copyInt(v, out, k, -(2 ** 31))) return undefined;
  }
  for (const k of LENGTH_KEYS) {
    if (!copyInt(v, out, k, 0)) return undefined;
  }
  if (v.tags !== undefined) {
    if (!Array.isArray(v.tags) || !v.tags.every((t) => typeof t === "string")) {
      return undefined;
    }
    out.tags = [...v.tags];
  }
  if ("logparams" in v) out.logparams = v.logparams;
  return out as ApiRow;
}

/** An id as a decimal string without leading zeros, or undefined when unsure. */
function fastId(x: unknown): string | undefined {
  if (typeof x === "number") {
    return Number.isSafeInteger(x) && x >= 0 ? String(x) : undefined;
  }
  if (typeof x === "string" && DECIMAL_ID.test(x)) {
    // Equal-length digit strings compare as their numbers do.
    if (x.length === 19 && x > MAX_ID) return undefined;
    return x.replace(/^0+(?=\d)/, "");
  }
  return undefined;
}

/** Copies an int4 at least `min`; false when present and not one. */
function copyInt(
  v: Record<string, unknown>,
  out: Record<string, unknown>,
  k: string,
  min: number,
): boolean {
  const x = v[k];
  if (x === undefined) return true;
  if (
    !Number.isInteger(x) || (x as number) < min || (x as number) > 2 ** 31 - 1
  ) {
    return false;
  }
  out[k] = x;
  return true;
}

/** A real instant in UTC (no rolled-over dates like Feb 30, no hour 24, no leap second). */
function isUtc(s: unknown): s is string {
  if (typeof s !== "string" || !UTC.test(s)) return false;
  const y = num(s, 0, 4), m = num(s, 5, 2), d = num(s, 8, 2);
  if (m < 1 || m > 12 || d < 1 || d > daysIn(y, m)) return false;
  return num(s, 11, 2) <= 23 && num(s, 14, 2) <= 59 && num(s, 17, 2) <= 59;
}

/** The decimal number of `len` ASCII digits at `at` (the regex above made them digits). */
function num(s: string, at: number, len: number): number {
  let n = 0;
  for (let i = at; i < at + len; i++) n = n * 10 + s.charCodeAt(i) - 48;
  return n;
}

function daysIn(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
