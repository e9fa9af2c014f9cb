/** @module COPY: the columns written, the encoding of rows into COPY text lines, and running a COPY. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { SinkRow } from "./sink.ts";

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
  "sha1_hidden",
  "suppressed",
  "raw",
  "kafka_partition",
  "kafka_offset",
] as const satisfies readonly (keyof SinkRow)[]; // deno-fmt-ignore

const JSON_COLUMNS = new Set<string>(["log_params", "raw"]);

const CHUNK_BYTES = 262_144;
const utf8 = new TextEncoder();

/**
 * Encodes rows in COPY text format as UTF-8, ~256 KiB per chunk (bytes, so the stream does not
 * convert each chunk again). Given `extra`, each line ends with one more column, `extra[i]` for
 * the i-th row (the staging table's copy number).
 */
export function* copyChunks(
  rows: readonly SinkRow[],
  extra?: readonly number[],
): Generator<Uint8Array> {
  let buf = new Uint8Array(CHUNK_BYTES);
  let pos = 0;
  for (let i = 0; i < rows.length; i++) {
    const line = extra
      ? `${copyLine(rows[i]!).slice(0, -1)}\t${extra[i]}\n`
      : copyLine(rows[i]!);
    const { read, written } = utf8.encodeInto(line, buf.subarray(pos));
    if (read === line.length) {
      pos += written;
      continue;
    }
    // Full: hand out what is there and start a chunk big enough for the line.
    if (pos > 0) yield buf.subarray(0, pos);
    buf = new Uint8Array(Math.max(CHUNK_BYTES, line.length * 3));
    pos = utf8.encodeInto(line, buf).written;
  }
  if (pos > 0) yield buf.subarray(0, pos);
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

/** The part of a postgres.js query that {@linkcode copyIn} needs. */
interface CopyQuery {
  reject: (err: unknown) => void;
  writable(): Promise<NodeJS.WritableStream>;
}

/**
 * Runs `COPY ... FROM STDIN` with the chunks as its data; resolves when the server has stored
 * them, rejects with the server's error when it refuses them. postgres.js 3.4 (pinned in
 * deno.json) hands out the stream before the server answers and, when the refusal arrives after
 * the last chunk, destroys nothing and never calls the stream's final callback, so a plain
 * `pipeline` would wait forever: the query's own rejection is raced against it.
 */
export async function copyIn(
  tx: { unsafe(query: string): unknown },
  statement: string,
  chunks: Iterable<Uint8Array | string>,
): Promise<void> {
  const query = tx.unsafe(statement) as CopyQuery;
  const refused = Promise.withResolvers<never>();
  refused.promise.catch(() => {}); // also rejects when the COPY fails to start
  const reject = query.reject;
  query.reject = (err: unknown) => {
    refused.reject(err);
    reject(err);
  };
  const writable = await query.writable();
  await Promise.race([
    pipeline(Readable.from(chunks), writable),
    refused.promise,
  ]);
}
