/** @module Sifts one Action API page's rows: new events, rejects, and rows already published. */
import { type ApiRow, ApiRowSchema } from "../schemas/wikimedia.ts";
import { fastApiRow } from "../schemas/fast_api_row.ts";
import type { Envelope } from "../schemas/envelope.ts";
import type { Cursor } from "./cursor.ts";
import { messageKey } from "./normalise.ts";
import type { OutRecord } from "../kafka/client.ts";

/** An rcid and the time it counts for in the cursor. */
export interface RowStamp {
  rcid: string;
  timestampMs: number;
}

/** Options for {@linkcode siftPageRows}. */
export interface SiftPageRowsOptions {
  cursor: Cursor;
  wiki: string;
  serverName: string;
  topics: { events: string; rejects: string };
  /** ISO 8601 time stamped on every record. */
  fetchedAt: string;
}

/** A page's rows sifted, in page order. */
export interface SiftedRows {
  /** Event and reject records, in page order. */
  records: OutRecord[];
  fresh: RowStamp[];
  /** Rejected rows that carry an rcid, so the overlap does not reject them again. */
  rejectedIds: RowStamp[];
  duplicates: number;
}

/** Validates each row and drops the ones the cursor (or this page) already holds. */
export function siftPageRows(
  rows: unknown[],
  options: SiftPageRowsOptions,
): SiftedRows {
  const sifter = new RowSifter(options);
  for (const raw of rows) sifter.add(raw);
  return sifter.result;
}

/** The running state of {@linkcode siftPageRows}. */
class RowSifter {
  readonly result: SiftedRows = {
    records: [],
    fresh: [],
    rejectedIds: [],
    duplicates: 0,
  };
  #options: SiftPageRowsOptions;
  #inPage = new Set<string>();

  constructor(options: SiftPageRowsOptions) {
    this.#options = options;
  }

  add(raw: unknown): void {
    const fast = fastApiRow(raw);
    if (fast) return this.#addRow(raw, fast);
    const parsed = ApiRowSchema.safeParse(raw);
    if (parsed.success) this.#addRow(raw, parsed.data);
    else this.#addReject(raw, parsed.error.issues);
  }

  #addReject(
    raw: unknown,
    issues: { path: PropertyKey[]; message: string }[],
  ): void {
    const { cursor, wiki, topics, fetchedAt } = this.#options;
    // Remember a bad row's rcid (when it has one) so the overlap does not reject it again.
    const id = rawRcid(raw);
    if (id && (cursor.has(id) || this.#inPage.has(id))) return;
    if (id) {
      this.#inPage.add(id);
      // A bad row never moves the cursor forward (its timestamp is not trusted).
      const ts = Math.min(rawTime(raw) ?? cursor.lastMs, cursor.lastMs);
      this.result.rejectedIds.push({ rcid: id, timestampMs: ts });
    }
    this.result.records.push(
      rejectRecord(topics.rejects, wiki, raw, issues, fetchedAt),
    );
  }

  #addRow(raw: unknown, row: ApiRow): void {
    const { cursor, wiki, serverName, topics, fetchedAt } = this.#options;
    if (cursor.has(row.rcid) || this.#inPage.has(row.rcid)) {
      this.result.duplicates++;
      return;
    }
    const envelope: Envelope = {
      v: 1,
      source: "action_api",
      wiki,
      server_name: serverName,
      fetched_at: fetchedAt,
      row: raw as Record<string, unknown>,
    };
    this.result.records.push({
      topic: topics.events,
      key: messageKey(wiki, row),
      value: JSON.stringify(envelope),
      headers: { wiki, rcid: row.rcid },
    });
    this.#inPage.add(row.rcid);
    this.result.fresh.push({
      rcid: row.rcid,
      timestampMs: Date.parse(row.timestamp),
    });
  }
}

function rawRcid(raw: unknown): string | undefined {
  const v = (raw as { rcid?: unknown } | null)?.rcid;
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  if (typeof v === "string" && /^\d{1,19}$/.test(v)) return v;
  return undefined;
}

function rawTime(raw: unknown): number | undefined {
  const v = (raw as { timestamp?: unknown } | null)?.timestamp;
  const ms = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

function rejectRecord(
  topic: string,
  wiki: string,
  raw: unknown,
  issues: { path: PropertyKey[]; message: string }[],
  fetchedAt: string,
): OutRecord {
  const reason = issues.slice(0, 3).map((i) =>
    `${i.path.join(".") || "(root)"}: ${i.message}`
  ).join("; ");
  return {
    topic,
    key: `${wiki}:reject`,
    value: JSON.stringify({
      v: 1,
      wiki,
      reason,
      fetched_at: fetchedAt,
      row: raw,
    }),
    headers: { wiki, reason: "bad_row" },
  };
}
