/**
 * @module A targeted speed-up of kafkajs 2.2.4's protocol encoder (the last release): the same
 * bytes, fewer buffers.
 *
 * `Encoder.writeUVarInt()` collects each varint's bytes in an array and copies them in through
 * `Buffer.from(array)`: one new Buffer per varint. A record has eight or more varints (length,
 * offset delta, key and value lengths, header count, each header's key and value lengths), and
 * `writeVarLong()` / `sizeOfVarLong()` (the timestamp delta) do the same through 64-bit `Long`
 * arithmetic. Under Deno's Node compatibility a Buffer costs about a microsecond, so a 500-event
 * page spent ~5 ms of its Kafka transaction creating them. This writes each varint straight into
 * the encoder's buffer, and takes varlongs that fit 32 bits (always, for a timestamp delta in
 * one batch) through the same 32-bit path; anything larger keeps kafkajs's own code. Nested
 * encoders (each record's headers, each record in its batch) are copied in without first
 * slicing them into another Buffer. The wire bytes are unchanged
 * (tests/kafka/encoder_fix_test.ts checks them against a reference).
 */
// The file is part of the pinned package (deno.json); its module is the one kafkajs requires.
// @ts-types="./_encoder_fix.d.ts"
import Encoder from "kafkajs/src/protocol/encoder.js";

interface EncoderInstance {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): EncoderInstance;
  writeEncoder(value: EncoderInstance): EncoderInstance;
  writeEncoderArray(value: EncoderInstance[]): EncoderInstance;
}

interface EncoderClass {
  prototype: EncoderInstance & {
    writeVarLong(this: EncoderInstance, value: unknown): EncoderInstance;
  };
  sizeOfVarLong(value: unknown): number;
  __wikistreamFixed?: boolean;
}

const cls = Encoder as unknown as EncoderClass;

if (!cls.__wikistreamFixed) {
  const proto = cls.prototype;
  const originalVarLong = proto.writeVarLong;
  const originalSizeOfVarLong = cls.sizeOfVarLong;
  // Same loop as kafkajs's (32-bit: `value & 0xffffff80`, `value >>>= 7`), written in place.
  proto.writeUVarInt = function (this: EncoderInstance, value: number) {
    this.ensureAvailable(5);
    const buf = this.buf;
    let offset = this.offset;
    while ((value & 0xffffff80) !== 0) {
      buf[offset++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[offset++] = value & 0x7f;
    this.offset = offset;
    return this;
  };
  // A varlong in the int32 range has the same zigzag value, and the same bytes, as a varint.
  proto.writeVarLong = function (this: EncoderInstance, value: unknown) {
    if (!isInt32(value)) return originalVarLong.call(this, value);
    return this.writeUVarInt((value << 1) ^ (value >> 31));
  };
  cls.sizeOfVarLong = function (value: unknown) {
    if (!isInt32(value)) return originalSizeOfVarLong.call(cls, value);
    let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
    let bytes = 1;
    while (zigzag >= 0x80) {
      bytes++;
      zigzag >>>= 7;
    }
    return bytes;
  };
  // Copies another encoder's bytes without first slicing them into a new Buffer.
  const originalWriteEncoder = proto.writeEncoder;
  const originalWriteEncoderArray = proto.writeEncoderArray;
  proto.writeEncoder = function (this: EncoderInstance, value) {
    if (!isEncoder(value)) return originalWriteEncoder.call(this, value);
    append(this, value);
    return this;
  };
  proto.writeEncoderArray = function (this: EncoderInstance, value) {
    if (!Array.isArray(value) || !value.every(isEncoder)) {
      return originalWriteEncoderArray.call(this, value);
    }
    for (const v of value) append(this, v);
    return this;
  };
  cls.__wikistreamFixed = true;
}

/** True once the fix is installed (importing this module installs it). */
export function encoderFixed(): boolean {
  return cls.__wikistreamFixed === true;
}

/** An encoder whose buffer is a byte array (kafkajs checks `Buffer.isBuffer(value.buf)`). */
function isEncoder(value: unknown): value is EncoderInstance {
  return typeof value === "object" && value !== null &&
    (value as EncoderInstance).buf instanceof Uint8Array &&
    Number.isInteger((value as EncoderInstance).offset);
}

/** Appends the bytes `from` has written to `to`. */
function append(to: EncoderInstance, from: EncoderInstance): void {
  const n = from.offset;
  to.ensureAvailable(n);
  const src = from.buf;
  to.buf.set(new Uint8Array(src.buffer, src.byteOffset, n), to.offset);
  to.offset += n;
}

function isInt32(value: unknown): value is number {
  return typeof value === "number" && (value | 0) === value;
}
