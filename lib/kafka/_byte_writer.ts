/** @module A growing big-endian byte writer with Kafka's zigzag varints, for the Produce encoder. */
import { Buffer } from "node:buffer";

/** Appends protocol fields to one byte array, doubling it when full. */
export class ByteWriter {
  #buf: Uint8Array;
  #dv: DataView;
  #at = 0;

  constructor(initial = 4096) {
    this.#buf = new Uint8Array(initial);
    this.#dv = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#at;
  }

  /** The bytes written (a view, valid until the next write). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }

  /** A view of bytes `from` to `to` (valid until the next write). */
  view(from: number, to: number): Uint8Array {
    return this.#buf.subarray(from, to);
  }

  /** Skips `n` bytes (to be filled in later); returns where they start. */
  reserve(n: number): number {
    this.#ensure(n);
    const at = this.#at;
    this.#at += n;
    return at;
  }

  skip(n: number): void {
    this.reserve(n);
  }

  int8(v: number): void {
    this.#ensure(1);
    this.#dv.setInt8(this.#at, v);
    this.#at += 1;
  }

  int16(v: number): void {
    this.#ensure(2);
    this.#dv.setInt16(this.#at, v);
    this.#at += 2;
  }

  int32(v: number): void {
    this.#ensure(4);
    this.#dv.setInt32(this.#at, v);
    this.#at += 4;
  }

  int64(v: bigint): void {
    this.#ensure(8);
    this.#dv.setBigInt64(this.#at, v);
    this.#at += 8;
  }

  setInt32(at: number, v: number): void {
    this.#dv.setInt32(at, v);
  }

  setUint32(at: number, v: number): void {
    this.#dv.setUint32(at, v);
  }

  /** A nullable string: int16 byte length (-1 for null), then UTF-8. */
  string(s: string | null): void {
    if (s === null) return this.int16(-1);
    const at = this.reserve(2);
    const n = this.#utf8(s);
    this.#dv.setInt16(at, n);
  }

  /** A signed varint, zigzag-encoded (kafkajs's `writeVarInt`). */
  varint(v: number): void {
    this.#ensure(5);
    this.#at = writeUVarInt(this.#buf, this.#at, (v << 1) ^ (v >> 31));
  }

  /** Varint length (-1 for null) then the bytes: a string as UTF-8, a Buffer as is. */
  varBytes(v: string | Uint8Array | null | undefined): void {
    if (v === null || v === undefined) return this.varint(-1);
    if (typeof v !== "string") {
      this.varint(v.length);
      this.#ensure(v.length);
      this.#buf.set(v, this.#at);
      this.#at += v.length;
      return;
    }
    // Room for the longest length prefix the string could need; moved back if shorter.
    const room = varintSize(3 * v.length);
    const lengthAt = this.reserve(room);
    const n = this.#utf8(v);
    this.placeVarintBefore(lengthAt, lengthAt + room, n);
  }

  /**
   * Writes the varint `v` at `at`, where `bodyAt - at` bytes were left for it, and moves the
   * bytes from `bodyAt` to the end back so that they follow it directly.
   */
  placeVarintBefore(at: number, bodyAt: number, v: number): void {
    const end = writeUVarInt(this.#buf, at, (v << 1) ^ (v >> 31));
    if (end < bodyAt) {
      this.#buf.copyWithin(end, bodyAt, this.#at);
      this.#at -= bodyAt - end;
    }
  }

  /** Writes `s` as UTF-8 at the end; returns its byte length. */
  #utf8(s: string): number {
    this.#ensure(3 * s.length);
    const buf = this.#buf;
    let at = this.#at;
    let i = 0;
    // A short string goes byte by byte while ASCII (cheaper than a call into the encoder); the
    // rest, and a long one whole, through the encoder (lone surrogates become U+FFFD, as in
    // Buffer).
    if (s.length <= SHORT) {
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at++] = c;
      }
    }
    if (i < s.length) {
      at += ENCODER.encodeInto(s.slice(i), buf.subarray(at)).written;
    }
    const n = at - this.#at;
    this.#at = at;
    return n;
  }

  #ensure(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#at));
    this.#buf = next;
    this.#dv = new DataView(next.buffer);
  }
}

/** Whether `v` is a Node Buffer (kafkajs writes other values through `String(v)`). */
export function isBuffer(v: unknown): v is Uint8Array {
  return Buffer.isBuffer(v);
}

const ENCODER = new TextEncoder();

/** Strings up to this length are copied byte by byte while ASCII. */
const SHORT = 32;

/** Bytes of the zigzag varint of `v`. */
function varintSize(v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0, n = 1;
  while (z >= 0x80) {
    n++;
    z >>>= 7;
  }
  return n;
}

/** LEB128 of a 32-bit value at `at` (kafkajs's loop); returns the end. */
function writeUVarInt(buf: Uint8Array, at: number, value: number): number {
  while ((value & 0xffffff80) !== 0) {
    buf[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[at++] = value & 0x7f;
  return at;
}
