/** @module zod schemas for the Wikimedia boundary: Action API JSON and EventStreams events. */
import { z } from "zod";

const MAX_ID = 9223372036854775807n;

/**
 * A MediaWiki id as it arrives: a non-negative integer, sometimes serialised as a string (old MW).
 * Checked here, converted to text by the row's one transform (per-field transforms cost 5x).
 */
const Id = z.union([
  z.number().int().nonnegative().max(Number(MAX_ID)),
  z.string().regex(/^\d{1,19}$/, "Expected a decimal id")
    .refine(
      (s) => s.length < 19 || !/^\d+$/.test(s) || BigInt(s) <= MAX_ID,
      "Id exceeds 64 bits",
    ),
]);

/** A flag: fv2 booleans, or fv1 presence flags (`""` when set). */
const Flag = z.union([z.boolean(), z.literal("")]);

/** Columns namespace, old_len and new_len are int4: a larger value would fail the COPY. */
const Int4 = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const Length = Int4.nonnegative();

/** The range PostgreSQL timestamptz and `toISOString()` agree on: years 1 to 9999 (UTC). */
const MAX_EPOCH_SECONDS = 253_402_300_799;
const Timestamp = z.iso.datetime({ offset: true }).refine((s) => {
  const y = new Date(s).getUTCFullYear();
  return y >= 1 && y <= 9999;
}, "Timestamp outside years 1-9999");

/** The API row's 64-bit id fields (shared with the fast path in fast_api_row.ts). */
export const ID_KEYS = [
  "rcid",
  "pageid",
  "revid",
  "old_revid",
  "userid",
  "logid",
] as const;
/** The API row's boolean flag fields (shared with the fast path in fast_api_row.ts). */
export const FLAG_KEYS = [
  "anon",
  "temp",
  "bot",
  "new",
  "minor",
  "redirect",
  "userhidden",
  "commenthidden",
  "actionhidden",
  "sha1hidden",
  "suppressed",
] as const; // deno-fmt-ignore

const ApiRowInputSchema = z.object({
  type: z.enum(["edit", "new", "log", "categorize", "external"]),
  rcid: Id,
  timestamp: Timestamp,
  ns: Int4.optional(),
  title: z.string().optional(),
  pageid: Id.optional(),
  revid: Id.optional(),
  old_revid: Id.optional(),
  user: z.string().optional(),
  userid: Id.optional(),
  oldlen: Length.optional(),
  newlen: Length.optional(),
  comment: z.string().optional(),
  tags: z.array(z.string()).optional(),
  sha1: z.string().optional(),
  logid: Id.optional(),
  logtype: z.string().optional(),
  logaction: z.string().optional(),
  logparams: z.unknown().optional(),
  anon: Flag.optional(),
  temp: Flag.optional(),
  bot: Flag.optional(),
  new: Flag.optional(),
  minor: Flag.optional(),
  redirect: Flag.optional(),
  userhidden: Flag.optional(),
  commenthidden: Flag.optional(),
  actionhidden: Flag.optional(),
  sha1hidden: Flag.optional(),
  suppressed: Flag.optional(),
});

/**
 * One `list=recentchanges` row, in either formatversion. The output keeps the known fields only
 * (the raw row is stored whole anyway), with ids as decimal strings and flags as booleans.
 * A plain (non-loose) object lets zod compile its fast path.
 */
export const ApiRowSchema = ApiRowInputSchema.transform((row): ApiRow => {
  const out = row as Record<string, unknown>;
  for (const k of ID_KEYS) {
    const v = out[k];
    if (v !== undefined) {
      out[k] = typeof v === "number"
        ? String(v)
        : (v as string).replace(/^0+(?=\d)/, "");
    }
  }
  for (const k of FLAG_KEYS) {
    if (out[k] !== undefined) out[k] = out[k] === true || out[k] === "";
  }
  return out as ApiRow;
});

type IdKey = typeof ID_KEYS[number];
type FlagKey = typeof FLAG_KEYS[number];
type RowInput = z.infer<typeof ApiRowInputSchema>;

/** A validated recent-changes row (ids as decimal strings, flags as booleans). */
export type ApiRow =
  & Omit<RowInput, IdKey | FlagKey>
  & { rcid: string }
  & { [K in Exclude<IdKey, "rcid">]?: string }
  & { [K in FlagKey]?: boolean };

/** An Action API response envelope (errors, continuation, rows left unvalidated). */
export const ApiResponseSchema = z.looseObject({
  error: z.looseObject({ code: z.string(), info: z.string().optional() })
    .optional(),
  errors: z.array(z.looseObject({ code: z.string() })).optional(),
  continue: z.record(
    z.string(),
    z.union([z.string(), z.number()]).transform(String),
  ).optional(),
  curtimestamp: z.string().optional(),
  query: z.looseObject({
    recentchanges: z.array(z.unknown()).optional(),
    general: z.looseObject({
      wikiid: z.string(),
      servername: z.string().optional(),
    }).optional(),
  }).optional(),
});

/** A parsed Action API response. */
export type ApiResponse = z.infer<typeof ApiResponseSchema>;

/** One EventStreams `mediawiki.recentchange` event (2018 and 2020+ schemas); unknown keys kept. */
export const StreamEventSchema = z.looseObject({
  meta: z.looseObject({
    id: z.string().min(1),
    dt: z.string().optional(),
    domain: z.string().optional(),
  }),
  id: Id.nullable().optional(),
  type: z.enum(["edit", "new", "log", "categorize", "external"]),
  namespace: Int4.optional(),
  title: z.string().optional(),
  comment: z.string().optional(),
  timestamp: z.number().int().nonnegative().max(MAX_EPOCH_SECONDS),
  user: z.string().optional(),
  bot: z.boolean().optional(),
  minor: z.boolean().optional(),
  length: z.looseObject({
    old: Length.nullable().optional(),
    new: Length.nullable().optional(),
  })
    .optional(),
  revision: z.looseObject({
    old: Id.nullable().optional(),
    new: Id.nullable().optional(),
  })
    .optional(),
  wiki: z.string().min(1),
  server_name: z.string().min(1),
  log_id: Id.nullable().optional(),
  log_type: z.string().nullable().optional(),
  log_action: z.string().nullable().optional(),
  log_params: z.unknown().optional(),
});

/** A validated EventStreams event. */
export type StreamEvent = z.infer<typeof StreamEventSchema>;
