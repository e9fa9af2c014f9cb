/** @module The PostgreSQL sink: COPY into staging, merge idempotently, derive per-minute activity. */
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Sql } from "./db.ts";
import type { ChangeRow } from "../source/normalise.ts";
import { isRetriable } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";

/** A change row plus where it was read from in Kafka. */
export interface SinkRow extends ChangeRow {
  kafka_partition: number;
  kafka_offset: string;
}

/** A record that could not become a row: kept with its original bytes and the reason. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  reason: string;
  error: string;
}

/** What one write did. */
export interface WriteResult {
  inserted: number;
  duplicates: number;
  deadLettered: DeadLetter[];
}

/** Writes batches into PostgreSQL. */
export interface Sink {
  /** Writes rows and dead letters in one transaction; resolves after commit. */
  write(rows: SinkRow[], deadLetters?: DeadLetter[]): Promise<WriteResult>;
  /** Closes the pool the sink opened itself (when given a factory). */
  close(): Promise<void>;
}

/** Publishes dead letters elsewhere (the DLQ topic); resolves once they are durable there. */
export interface DeadLetterPublisher {
  publish(deadLetters: DeadLetter[]): Promise<void>;
}

/** Options for {@linkcode createSink}. */
export interface SinkOptions {
  log: Logger;
  /**
   * Called with each dead letter before the transaction that stores it commits, so a crash can
   * repeat a published dead letter but never lose one. Each dead letter is published once per
   * `write` call, even when the write is retried inside it.
   */
  deadLetters?: DeadLetterPublisher;
  /** A write (COPY + merge + commit) that takes longer fails and is retried on a new pool. */
  writeTimeoutMs?: number;
}

/** The columns written, in COPY order. */
export const COLUMNS = [
  "wiki",
  "rcid",
  "server_name",
  "change_type",
  "namespace",
  "title",
  "page_id",
  "rev_id",
  "old_rev_id",
  "user_name",
  "user_id",
  "is_anon",
  "is_temp",
  "is_bot",
  "is_minor",
  "is_new",
  "old_len",
  "new_len",
  "event_time",
  "comment",
  "tags",
  "sha1",
  "log_id",
  "log_type",
  "log_action",
  "log_params",
  "user_hidden",
  "comment_hidden",
  "action_hidden",
  "raw",
  "kafka_partition",
  "kafka_offset",
] as const satisfies readonly (keyof SinkRow)[]; // deno-fmt-ignore

const JSON_COLUMNS = new Set<string>(["log_params", "raw"]);

/** Creates the sink. Poison rows that PostgreSQL rejects are isolated and dead-lettered. */
/**
 * Creates the sink. Given a pool factory, the sink owns its pool and replaces it after a
 * connection failure or a write timeout: postgres.js 3.4 can leave a connection that died in the
 * middle of COPY stuck for good, so after a PostgreSQL restart only a new pool recovers.
 */
export function createSink(db: Sql | (() => Sql), options: SinkOptions): Sink {
  const factory = "begin" in db ? undefined : db as () => Sql;
  let sql: Sql = factory ? factory() : db as Sql;
  const timeoutMs = options.writeTimeoutMs ?? 120_000;
  function replacePool() {
    if (!factory) return;
    const old = sql;
    sql = factory();
    old.end({ timeout: 0 }).catch(() => {});
    options.log.warn("database pool replaced after a connection failure");
  }
  const cols = COLUMNS.join(", ");
  const published = new WeakSet<DeadLetter>();
  async function publish(deadLetters: DeadLetter[]): Promise<void> {
    const fresh = deadLetters.filter((d) => !published.has(d));
    if (fresh.length === 0 || !options.deadLetters) return;
    await options.deadLetters.publish(fresh);
    for (const d of fresh) published.add(d);
  }
  async function writeOnce(
    rows: SinkRow[],
    deadLetters: DeadLetter[],
  ): Promise<number> {
    await publish(deadLetters);
    return await withTimeout(
      timeoutMs,
      sql.begin(async (tx) => {
        let inserted = 0;
        if (rows.length > 0) {
          await tx.unsafe(
            `create temp table if not exists wikistream_stage_text (${STAGE_DDL})
             on commit delete rows`,
          );
          const writable = await tx.unsafe(
            `copy pg_temp.wikistream_stage_text (${cols}) from stdin`,
          )
            .writable();
          await pipeline(Readable.from(copyChunks(rows)), writable);
          const [res] = await tx.unsafe(MERGE_SQL);
          inserted = Number(res?.inserted ?? 0);
        }
        if (deadLetters.length > 0) {
          await tx`insert into dead_letters ${
            tx(deadLetters.map((d) => ({
              topic: storable(d.topic),
              partition: d.partition,
              offset: d.offset,
              key: d.key ? Buffer.from(d.key) : null,
              value: d.value ? Buffer.from(d.value) : null,
              headers: Object.fromEntries(
                Object.entries(d.headers).map((
                  [k, v],
                ) => [storable(k), storable(v)]),
              ) as never,
              reason: storable(d.reason),
              error: storable(d.error),
            })))
          } on conflict (topic, partition, "offset") do nothing`;
        }
        return inserted;
      }),
    );
  }

  async function write(
    rows: SinkRow[],
    deadLetters: DeadLetter[] = [],
  ): Promise<WriteResult> {
    try {
      const inserted = await writeOnce(rows, deadLetters);
      return {
        inserted,
        duplicates: rows.length - inserted,
        deadLettered: deadLetters,
      };
    } catch (err) {
      if (isConnectionFailure(err)) replacePool();
      if (!isDataError(err) || rows.length === 0) throw err;
      // A row PostgreSQL rejects (bad data) must not stall the partition: bisect to find it.
      if (rows.length === 1) {
        const row = rows[0]!;
        const dl = rowDeadLetter(row, err);
        options.log.warn("row rejected by database, dead-lettered", {
          rcid: row.rcid,
          err,
        });
        await writeOnce([], [...deadLetters, dl]);
        return {
          inserted: 0,
          duplicates: 0,
          deadLettered: [...deadLetters, dl],
        };
      }
      const mid = Math.ceil(rows.length / 2);
      const a = await write(rows.slice(0, mid), deadLetters);
      const b = await write(rows.slice(mid));
      return {
        inserted: a.inserted + b.inserted,
        duplicates: a.duplicates + b.duplicates,
        deadLettered: [...a.deadLettered, ...b.deadLettered],
      };
    }
  }
  return {
    write,
    async close() {
      if (factory) await sql.end({ timeout: 5 });
    },
  };
}

/** Rejects with a retriable WRITE_TIMEOUT error when `p` takes longer than `ms`. */
function withTimeout<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = Object.assign(
        new Error(`Database write timed out after ${ms} ms`),
        {
          code: "WRITE_TIMEOUT",
          retriable: true,
        },
      );
      reject(err);
    }, ms);
  });
  p.catch(() => {}); // a timed-out write may still reject later
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Anything but an error PostgreSQL itself answered on a live connection (class 08/57 aside). */
function isConnectionFailure(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown };
  if (e?.name !== "PostgresError") return true;
  return typeof e.code === "string" && /^(08|57)/.test(e.code);
}

/**
 * Column types. Rows are COPYed into an all-text staging table and cast by the merge: postgres.js
 * 3.4 never settles a COPY that the server rejects (the error arrives after the stream was
 * handed out), so a bad value must fail in an ordinary statement, where the bisect can find it.
 */
const TYPES: Record<(typeof COLUMNS)[number], string> = {
  wiki: "text",
  rcid: "bigint",
  server_name: "text",
  change_type: "text",
  namespace: "integer",
  title: "text",
  page_id: "bigint",
  rev_id: "bigint",
  old_rev_id: "bigint",
  user_name: "text",
  user_id: "bigint",
  is_anon: "boolean",
  is_temp: "boolean",
  is_bot: "boolean",
  is_minor: "boolean",
  is_new: "boolean",
  old_len: "integer",
  new_len: "integer",
  event_time: "timestamptz",
  comment: "text",
  tags: "text[]",
  sha1: "text",
  log_id: "bigint",
  log_type: "text",
  log_action: "text",
  log_params: "jsonb",
  user_hidden: "boolean",
  comment_hidden: "boolean",
  action_hidden: "boolean",
  raw: "jsonb",
  kafka_partition: "integer",
  kafka_offset: "bigint",
}; // deno-fmt-ignore

const STAGE_DDL = COLUMNS.map((c) => `${c} text`).join(", ");
const CAST_LIST = COLUMNS.map((c) => `${c}::${TYPES[c]}`).join(", ");

const MERGE_SQL = `
with ins as (
  insert into wiki_recent_changes (${COLUMNS.join(", ")})
  select distinct on (wiki, rcid::bigint) ${CAST_LIST} from pg_temp.wikistream_stage_text
  order by wiki, rcid::bigint, kafka_offset::bigint
  on conflict (wiki, rcid) do nothing
  returning wiki, event_time, change_type, is_bot, is_anon, old_len, new_len
), agg as (
  select wiki, date_trunc('minute', event_time) as minute,
    count(*) as changes,
    count(*) filter (where change_type = 'edit') as edits,
    count(*) filter (where change_type = 'new') as new_pages,
    count(*) filter (where change_type = 'log') as log_events,
    count(*) filter (where change_type = 'categorize') as categorize,
    count(*) filter (where is_bot) as bot_changes,
    count(*) filter (where is_anon) as anon_changes,
    coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0) as bytes_added,
    coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0) as bytes_removed
  from ins group by 1, 2
), up as (
  insert into wiki_activity_minute as a
  select * from agg order by wiki, minute
  on conflict (wiki, minute) do update set
    changes = a.changes + excluded.changes,
    edits = a.edits + excluded.edits,
    new_pages = a.new_pages + excluded.new_pages,
    log_events = a.log_events + excluded.log_events,
    categorize = a.categorize + excluded.categorize,
    bot_changes = a.bot_changes + excluded.bot_changes,
    anon_changes = a.anon_changes + excluded.anon_changes,
    bytes_added = a.bytes_added + excluded.bytes_added,
    bytes_removed = a.bytes_removed + excluded.bytes_removed
)
select count(*)::int as inserted from ins`;

/** A PostgreSQL error about the data itself (not the connection or the server's state). */
function isDataError(err: unknown): boolean {
  return err instanceof Error && err.name === "PostgresError" &&
    !isRetriable(err);
}

/** Text PostgreSQL can store: a poison record's headers may hold NUL or lone surrogates. */
function storable(s: string): string {
  return s.replaceAll("\0", "\\u0000").toWellFormed();
}

function rowDeadLetter(row: SinkRow, err: unknown): DeadLetter {
  const e = err as { code?: string; message?: string };
  return {
    topic: "(database)",
    partition: row.kafka_partition,
    offset: row.kafka_offset,
    key: null,
    value: new TextEncoder().encode(JSON.stringify(row.raw)),
    headers: {
      wiki: row.wiki,
      rcid: row.rcid,
      "dlq.reason": "database_rejected",
      "dlq.error": `${e.code ?? ""} ${e.message ?? String(err)}`.trim()
        .slice(0, 1000),
      "dlq.source_partition": String(row.kafka_partition),
      "dlq.source_offset": row.kafka_offset,
      "dlq.received_at": new Date().toISOString(),
    },
    reason: "database_rejected",
    error: `${e.code ?? ""} ${e.message ?? String(err)}`.trim(),
  };
}

/** Encodes rows in COPY text format, ~256 KiB per chunk. */
export function* copyChunks(rows: SinkRow[]): Generator<string> {
  let buf = "";
  for (const row of rows) {
    buf += copyLine(row);
    if (buf.length > 262_144) {
      yield buf;
      buf = "";
    }
  }
  if (buf) yield buf;
}

/** One row as a COPY text line. */
export function copyLine(row: SinkRow): string {
  let line = "";
  for (let i = 0; i < COLUMNS.length; i++) {
    const col = COLUMNS[i]!;
    if (i > 0) line += "\t";
    line += copyValue(row[col], JSON_COLUMNS.has(col));
  }
  return line + "\n";
}

function copyValue(v: unknown, json: boolean): string {
  if (v === null || v === undefined) return "\\N";
  if (json) return escapeCopy(JSON.stringify(v));
  if (Array.isArray(v)) {
    return escapeCopy(
      `{${v.map((s) => `"${String(s).replace(/[\\"]/g, "\\$&")}"`).join(",")}}`,
    );
  }
  if (typeof v === "boolean") return v ? "t" : "f";
  return escapeCopy(String(v));
}

function escapeCopy(s: string): string {
  return /[\\\t\n\r]/.test(s)
    ? s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n")
      .replace(/\r/g, "\\r")
    : s;
}
