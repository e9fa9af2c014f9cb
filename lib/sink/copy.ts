/** @module COPY: the columns written, the encoding of rows into COPY text lines, and running a COPY. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { SinkRow } from "./sink.ts";
import { decodeValue } from "./decode.ts";

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

/** Rows' COPY lines encoded ahead of their write (views into one buffer per batch). */
const encoded = new WeakMap<SinkRow, Uint8Array>();

/**
 * What `raw` of a row encoded ahead holds: its parsed JSON is let go once in the COPY line (and
 * decoded again from the row's record in the rare case a copy of the row is encoded).
 */
const RELEASED: Record<string, unknown> = Object.freeze({});

/**
 * Encodes rows' COPY lines now, while their batch waits for its write (decode ahead), so the
 * write only sends bytes and never waits on the client's encoding. Each row's `raw` (its whole
 * parsed record, most of its memory) is then let go: the COPY line holds it, and a row's own
 * record (`source`) holds the original bytes for a dead letter. The rows must not change
 * afterwards. One encoder's rows share its buffers (a batch decoded in slices: one encoder).
 */
export class AheadEncoder {
  readonly #lines = new Chunks();

  encode(rows: readonly SinkRow[]): void {
    for (const row of rows) {
      const at = this.#lines.putString(copyLine(row));
      encoded.set(row, at.buf.subarray(at.start, at.end));
      if (row.source) row.raw = RELEASED;
    }
    this.#lines.full.length = 0; // the views hold them
  }
}

/** Appends UTF-8 into buffers of at least CHUNK_BYTES; a string is never split. */
class Chunks {
  buf = new Uint8Array(CHUNK_BYTES);
  pos = 0;
  /** Buffers that filled up, in order, not yet handed out (a new buffer never reuses them). */
  full: Uint8Array[] = [];

  putString(s: string): { buf: Uint8Array; start: number; end: number } {
    let { read, written } = utf8.encodeInto(s, this.buf.subarray(this.pos));
    if (read !== s.length) {
      this.#next(s.length * 3);
      ({ read, written } = utf8.encodeInto(s, this.buf));
    }
    const start = this.pos;
    this.pos += written;
    return { buf: this.buf, start, end: this.pos };
  }

  putBytes(b: Uint8Array): void {
    if (this.buf.length - this.pos < b.length) this.#next(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes written so far, if there are enough of them (or `all`). */
  take(all = false): Uint8Array | undefined {
    if (this.pos === 0 || (!all && this.pos < CHUNK_BYTES / 2)) {
      return undefined;
    }
    const out = this.buf.subarray(0, this.pos);
    this.buf = new Uint8Array(CHUNK_BYTES);
    this.pos = 0;
    return out;
  }

  #next(need: number): void {
    if (this.pos > 0) this.full.push(this.buf.subarray(0, this.pos));
    this.buf = new Uint8Array(Math.max(CHUNK_BYTES, need));
    this.pos = 0;
  }
}

/**
 * The rows in COPY text format as UTF-8 chunks (bytes, so the stream does not convert them
 * again): the lines encoded ahead are sent as they are, adjacent ones as one chunk; others are
 * encoded here. Given `extra`, each line ends with one more column, `extra[i]` for the i-th row
 * (the staging table's copy number).
 */
export function* copyChunks(
  rows: readonly SinkRow[],
  extra?: readonly number[],
): Generator<Uint8Array> {
  const out = new Chunks();
  let run: Uint8Array | undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const pre = encoded.get(row);
    if (pre && !extra) {
      yield* out.full.splice(0);
      const last = out.take(true);
      if (last) yield last;
      if (run && adjacent(run, pre) && run.length < 4 * CHUNK_BYTES) {
        run = new Uint8Array(
          run.buffer,
          run.byteOffset,
          run.length + pre.length,
        );
      } else {
        if (run) yield run;
        run = pre;
      }
      continue;
    }
    if (run) yield run;
    run = undefined;
    if (pre) {
      out.putBytes(pre.subarray(0, -1)); // without its newline
      out.putString(`\t${extra![i]}\n`);
    } else {
      const line = copyLine(row);
      out.putString(extra ? `${line.slice(0, -1)}\t${extra[i]}\n` : line);
    }
    yield* out.full.splice(0);
    const chunk = out.take();
    if (chunk) yield chunk;
  }
  if (run) yield run;
  yield* out.full.splice(0);
  const last = out.take(true);
  if (last) yield last;
}

function adjacent(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/** One row as a COPY text line. */
export function copyLine(row: SinkRow): string {
  let line = "";
  for (let i = 0; i < COLUMNS.length; i++) {
    const col = COLUMNS[i]!;
    if (i > 0) line += "\t";
    const v = col === "raw" && row.raw === RELEASED ? rawAgain(row) : row[col];
    line += copyValue(v, JSON_COLUMNS.has(col));
  }
  return line + "\n";
}

/** The `raw` of a row encoded ahead (then copied, e.g. by a test), decoded again from its record. */
function rawAgain(row: SinkRow): unknown {
  return decodeValue(row.source!.value).raw;
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

/** COPY text escapes of the characters that need one. */
const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};
const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPED = /[\\\t\n\r]/g;

function escapeCopy(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPED, (c) => ESCAPES[c]!) : s;
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
