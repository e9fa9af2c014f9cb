/** @module Decodes a Kafka record value into a table row, or says exactly why it cannot. */
import { ApiRowSchema, StreamEventSchema } from "../schemas/wikimedia.ts";
import { EnvelopeSchema } from "../schemas/envelope.ts";
import { fastApiRow, fastEnvelope } from "../schemas/fast_api_row.ts";
import {
  type ChangeRow,
  normaliseApiRow,
  normaliseStreamEvent,
} from "../source/normalise.ts";
import { DecodeError } from "../core/errors.ts";

/** Largest value accepted; larger ones are dead-lettered (reason `too_large`). */
export const MAX_VALUE_BYTES = 1_000_000;

const decoder = new TextDecoder("utf-8", { fatal: true });
const MAYBE_UNSTORABLE = /\\u(0000|[dD][89a-fA-F])/;

/** A record value parsed as JSON, not yet validated. */
export interface ParsedValue {
  json: unknown;
  text: string;
}

/** Decodes one record value; throws DecodeError with a reason on bad input. */
export function decodeValue(value: Uint8Array | null): ChangeRow {
  return validateValue(parseValue(value));
}

/** The first half of {@linkcode decodeValue}: size, UTF-8 and JSON; throws DecodeError. */
export function parseValue(value: Uint8Array | null): ParsedValue {
  if (value === null) {
    throw new DecodeError("empty", "Cannot decode record: value is null");
  }
  if (value.byteLength > MAX_VALUE_BYTES) {
    throw new DecodeError(
      "too_large",
      `Cannot decode record: ${value.byteLength} bytes exceeds ${MAX_VALUE_BYTES}`,
    );
  }
  try {
    const text = decoder.decode(value);
    return { json: JSON.parse(text), text };
  } catch (err) {
    throw new DecodeError(
      "not_json",
      `Cannot decode record: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The second half of {@linkcode decodeValue}: envelope, storable text, row; throws DecodeError. */
export function validateValue({ json, text }: ParsedValue): ChangeRow {
  const fast = fastEnvelope(json);
  const env = fast
    ? { success: true as const, data: fast }
    : EnvelopeSchema.safeParse(json);
  if (!env.success) {
    throw new DecodeError(
      "bad_envelope",
      `Cannot decode record: ${summarise(env.error.issues)}`,
    );
  }
  // Raw control characters are invalid in JSON and invalid UTF-8 was refused above, so a NUL or a
  // lone surrogate can only arrive as a \u escape: walk the values only when one may be there.
  // Likewise nesting deeper than 64 needs more than 64 openers.
  const walk = MAYBE_UNSTORABLE.test(text) || moreOpenersThan(text, 64);
  const bad = walk ? findUnstorableString(env.data) : null;
  if (bad) throw new DecodeError("bad_text", `Cannot decode record: ${bad}`);
  if (env.data.source === "eventstreams") {
    const event = StreamEventSchema.safeParse(env.data.row);
    if (!event.success) {
      throw new DecodeError(
        "bad_row",
        `Cannot decode record: ${summarise(event.error.issues)}`,
      );
    }
    return normaliseStreamEvent(event.data, env.data.row);
  }
  const quick = fastApiRow(env.data.row);
  const row = quick
    ? { success: true as const, data: quick }
    : ApiRowSchema.safeParse(env.data.row);
  if (!row.success) {
    throw new DecodeError(
      "bad_row",
      `Cannot decode record: ${summarise(row.error.issues)}`,
    );
  }
  return normaliseApiRow(
    row.data,
    { wiki: env.data.wiki, serverName: env.data.server_name },
    env.data.row,
  );
}

/** Whether the text holds more than `n` of `{` and `[` (an upper bound of its nesting depth). */
function moreOpenersThan(text: string, n: number): boolean {
  let count = 0;
  for (const c of ["{", "["]) {
    for (let i = text.indexOf(c); i !== -1; i = text.indexOf(c, i + 1)) {
      if (++count > n) return true;
    }
  }
  return false;
}

function summarise(issues: { path: PropertyKey[]; message: string }[]): string {
  return issues.slice(0, 3).map((i) =>
    `${i.path.join(".") || "(root)"}: ${i.message}`
  ).join("; ");
}

/** PostgreSQL text and jsonb cannot hold NUL or lone surrogates; find them before COPY does. */
function findUnstorableString(v: unknown, depth = 0): string | null {
  if (depth > 64) return "nesting deeper than 64 levels";
  if (typeof v === "string") {
    if (v.includes("\0")) return "string contains a NUL character";
    if (!v.isWellFormed()) return "string contains a lone surrogate";
    return null;
  }
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = findUnstorableString(x, depth + 1);
      if (r) return r;
    }
    return null;
  }
  if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      const r = findUnstorableString(k, depth + 1) ??
        findUnstorableString(x, depth + 1);
      if (r) return r;
    }
  }
  return null;
}
