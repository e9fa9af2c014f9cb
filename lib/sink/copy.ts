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

/**
 * What `raw` of a row encoded ahead holds: its COPY line (a view into one buffer per batch). The
 * parsed JSON is let go: the line holds it, and it is decoded again from the row's record in the
 * rare case a copy of the row is encoded. A slot of the row, not a WeakMap entry: an ephemeron
 * per row costs more to set and to collect.
 */
class Encoded {
  constructor(readonly line: Uint8Array) {}
}

/** The row's COPY line encoded ahead, if it was. */
function encodedLine(row: SinkRow): Uint8Array | undefined {
  const raw: unknown = row.raw;
  return raw instanceof Encoded ? raw.line : undefined;
}

/**
 * Encodes rows' COPY lines now, while their batch waits for its write (decode ahead), so the
 * write only sends bytes and never waits on the client's encoding. Each row's `raw` (its whole
 * parsed record, most of its memory) is then let go: the COPY line holds it, and a row's own
 * record (`source`) holds the original bytes for a dead letter. The rows must not change
 * afterwards. One encoder's rows share its buffers (a batch decoded in slices: one encoder).
 */
export class AheadEncoder {
  readonly #lines = new Chunks();

  /**
   * Encodes the rows' lines; `rawJson[i]`, when given, is the i-th row's source row as its record
   * holds it (see `rowJson` in decode.ts), written as it is instead of stringified again.
   */
  encode(
    rows: readonly SinkRow[],
    rawJson?: readonly (Uint8Array | undefined)[],
  ): void {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (!row.source) continue; // its raw cannot be let go: encoded when written
      const at = this.#lines.putLine(row, rawJson?.[i]);
      const line = new Encoded(at.buf.subarray(at.start, at.end));
      row.raw = line as unknown as SinkRow["raw"];
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
  /** Where the line being written by `putLine` starts (-1: none). */
  #line = -1;

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

  /**
   * Writes one row's COPY line (as {@linkcode copyLine} would), never split; `raw`, when given,
   * is the row's `raw` column as JSON text already, copied in as it is.
   */
  putLine(
    row: SinkRow,
    raw?: Uint8Array,
  ): { buf: Uint8Array; start: number; end: number } {
    if (!raw) return this.putString(copyLine(row));
    this.#line = this.pos;
    this.#string(`${copyColumns(row, 0, RAW_AT)}\t`);
    this.#escapedBytes(raw);
    this.#string(`\t${copyColumns(row, RAW_AT + 1, COLUMNS.length)}\n`);
    const start = this.#line;
    this.#line = -1;
    return { buf: this.buf, start, end: this.pos };
  }

  /** Room for `n` more bytes; a line being written moves whole into a new buffer. */
  #room(n: number): void {
    if (this.buf.length - this.pos >= n) return;
    const from = this.#line >= 0 ? this.#line : this.pos;
    const partial = this.buf.subarray(from, this.pos);
    if (from > 0) this.full.push(this.buf.subarray(0, from));
    this.buf = new Uint8Array(Math.max(CHUNK_BYTES, 2 * (partial.length + n)));
    this.buf.set(partial);
    this.pos = partial.length;
    if (this.#line >= 0) this.#line = 0;
  }

  #string(s: string): void {
    this.#room(3 * s.length);
    this.pos += utf8.encodeInto(s, this.buf.subarray(this.pos)).written;
  }

  /** UTF-8 bytes, COPY-escaped; copied whole when there is nothing to escape. */
  #escapedBytes(b: Uint8Array): void {
    if (
      b.indexOf(0x5c) === -1 && b.indexOf(0x09) === -1 &&
      b.indexOf(0x0a) === -1 && b.indexOf(0x0d) === -1
    ) {
      this.#room(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
      return;
    }
    this.#room(2 * b.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      const e = c < 0x80 ? ESCAPE_BYTE[c]! : 0;
      if (e !== 0) buf[p++] = 0x5c, buf[p++] = e;
      else buf[p++] = c;
    }
    this.pos = p;
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
    const pre = encodedLine(row);
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
  return `${copyColumns(row, 0, COLUMNS.length)}\n`;
}

/** Where `raw` is in COPY order. */
const RAW_AT = COLUMNS.indexOf("raw");

/** The row's columns `from` to before `to`, COPY-escaped, joined by tabs. */
function copyColumns(row: SinkRow, from: number, to: number): string {
  let line = "";
  for (let i = from; i < to; i++) {
    const col = COLUMNS[i]!;
    if (i > from) line += "\t";
    const v = col === "raw" && encodedLine(row) ? rawAgain(row) : row[col];
    line += copyValue(v, JSON_COLUMNS.has(col));
  }
  return line;
}

/** The `raw` of a row encoded ahead (then copied, e.g. by a test), decoded again from its record. */
function rawAgain(row: SinkRow): unknown {
  return decodeValue(row.source!.value).raw;
}

function copyValue(v: unknown, json: boolean): string {
  if (v === null || v === undefined) return "\\N";
  if (json) return escapeCopy(JSON.stringify(v));
  if (Array.isArray(v)) return escapeCopy(arrayLiteral(v));
  if (typeof v === "boolean") return v ? "t" : "f";
  return escapeCopy(String(v));
}

/** A text[] value in PostgreSQL's array syntax (every element quoted). */
function arrayLiteral(v: readonly unknown[]): string {
  return `{${
    v.map((s) => `"${String(s).replace(/[\\"]/g, "\\$&")}"`).join(",")
  }}`;
}

/** The byte after the backslash of each escaped ASCII byte; 0: written as it is. */
const ESCAPE_BYTE = new Uint8Array(128);
ESCAPE_BYTE[0x5c] = 0x5c;
ESCAPE_BYTE[0x09] = 0x74;
ESCAPE_BYTE[0x0a] = 0x6e;
ESCAPE_BYTE[0x0d] = 0x72;

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
