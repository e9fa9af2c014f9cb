/**
 * @module A faster encoder of kafkajs 2.2.4's Produce request (versions 3 to 7): the same bytes,
 * written once into one buffer.
 *
 * kafkajs builds each record, each header and each batch as its own Encoder (a Buffer each,
 * copied into the next level up), computes the batch's CRC-32C a byte at a time, and creates
 * a Buffer for every varint. For a 500-event page that was ~5 ms of the Kafka transaction.
 * This hooks the Produce request definition (the `protocol` lookup the broker calls), and when
 * a request is plain (no compression, no per-message timestamps, string or byte keys, values and
 * headers) encodes it here: each record straight into a growing byte array, CRC-32C by slicing
 * (8 bytes a step). Anything else keeps kafkajs's own encoder. The bytes are the same as
 * kafkajs's (tests/kafka/produce_encoder_test.ts compares them on random requests).
 */
// The files are part of the pinned package (deno.json); their modules are the ones kafkajs requires.
// @ts-types="./_kafkajs_internals.d.ts"
import ProduceRequests from "kafkajs/src/protocol/requests/produce/index.js";
// @ts-types="./_kafkajs_internals.d.ts"
import Encoder from "kafkajs/src/protocol/encoder.js";
import { crc32c } from "./_crc32c.ts";
import { ByteWriter, isBuffer } from "./_byte_writer.ts";

/** One message as kafkajs's sendMessages hands it to the Produce request. */
export interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  headers?: Record<string, unknown>;
  timestamp?: unknown;
}

/** The arguments kafkajs passes to a Produce request builder. */
export interface ProduceArgs {
  acks: number;
  timeout: number;
  compression?: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  topicData: {
    topic: string;
    partitions: {
      partition: number;
      firstSequence?: number;
      messages: ProduceMessage[];
    }[];
  }[];
}

/** What a Produce request builder returns: the request (with `encode`) and its response. */
interface Built {
  request: { encode(): Promise<unknown> };
  response: unknown;
}
type Builder = (args: ProduceArgs) => Built;

const KafkaEncoder = Encoder as new (size: number) => {
  buf: Uint8Array;
  offset: number;
};
const requests = ProduceRequests as {
  protocol(options: { version: number }): Builder;
  __wikistreamFixed?: boolean;
};

if (!requests.__wikistreamFixed) {
  const original = requests.protocol;
  requests.protocol = ({ version }) => {
    const build = original({ version });
    if (version < 3) return build;
    return (args) => {
      const built = build(args);
      const fast = encodeProduce(args);
      if (fast) built.request.encode = () => Promise.resolve(fast);
      return built;
    };
  };
  requests.__wikistreamFixed = true;
}

/** True once the hook is installed (importing this module installs it). */
export function produceEncoderFixed(): boolean {
  return requests.__wikistreamFixed === true;
}

/**
 * The Produce request body (v3 to v7) as a kafkajs Encoder, or undefined when the request is not
 * one this encoder takes (kafkajs's own encoder is used then). `now` stands in for Date.now().
 */
export function encodeProduce(
  args: ProduceArgs,
  now: () => number = Date.now,
): { buf: Uint8Array; offset: number } | undefined {
  const producerId = int64(args.producerId ?? -1);
  if (producerId === undefined || (args.compression ?? 0) !== 0) return;
  if (!shortString(args.transactionalId ?? "")) return;
  for (const t of args.topicData) {
    if (
      !shortString(t.topic) || !t.partitions.every((p) => plain(p.messages))
    ) {
      return;
    }
  }
  const w = new ByteWriter(64 * 1024);
  w.string(args.transactionalId ?? null);
  w.int16(args.acks);
  w.int32(args.timeout);
  w.int32(args.topicData.length);
  for (const t of args.topicData) {
    w.string(t.topic);
    w.int32(t.partitions.length);
    for (const p of t.partitions) {
      w.int32(p.partition);
      writeBatch(w, p.messages, {
        producerId,
        producerEpoch: args.producerEpoch ?? 0,
        firstSequence: p.firstSequence ?? 0,
        transactional: !!args.transactionalId,
        timestamp: now(),
      });
    }
  }
  // Hand it over as kafkajs's own Encoder, which the request framing expects.
  const out = new KafkaEncoder(w.length);
  out.buf.set(w.bytes());
  out.offset = w.length;
  return out;
}

/** The batch header fields that do not come from the messages. */
interface BatchFields {
  producerId: bigint;
  producerEpoch: number;
  firstSequence: number;
  transactional: boolean;
  timestamp: number;
}

/** Size-prefixed record batch (magic 2) of `messages`, as kafkajs's RecordBatch writes it. */
function writeBatch(
  w: ByteWriter,
  messages: ProduceMessage[],
  f: BatchFields,
): void {
  const sizeAt = w.reserve(4); // the record set's size, known at the end
  const start = w.length;
  w.int64(0n); // first offset
  const lengthAt = w.reserve(4); // batch length
  w.int32(0); // partition leader epoch
  w.int8(2); // magic
  const crcAt = w.reserve(4);
  const bodyAt = w.length;
  w.int16(f.transactional ? 16 : 0); // attributes: no compression, create time
  w.int32(messages.length - 1); // last offset delta
  w.int64(BigInt(f.timestamp)); // first timestamp
  w.int64(BigInt(f.timestamp)); // max timestamp
  w.int64(f.producerId);
  w.int16(f.producerEpoch);
  w.int32(f.firstSequence);
  w.int32(messages.length);
  for (let i = 0; i < messages.length; i++) writeRecord(w, messages[i]!, i);
  w.setUint32(crcAt, crc32c(w.view(bodyAt, w.length)));
  w.setInt32(lengthAt, w.length - lengthAt - 4);
  w.setInt32(sizeAt, w.length - start);
}

/** One record (timestamp delta 0: the batch's timestamp is the send time). */
function writeRecord(w: ByteWriter, m: ProduceMessage, offsetDelta: number) {
  const lengthAt = w.length;
  w.skip(5); // room for the longest varint length; the body moves back if shorter
  const bodyAt = w.length;
  w.int8(0); // attributes
  w.varint(0); // timestamp delta
  w.varint(offsetDelta);
  w.varBytes(m.key as string | Uint8Array | null | undefined);
  w.varBytes(m.value as string | Uint8Array | null | undefined);
  const headers = Object.entries(m.headers ?? {}).flatMap(([k, v]) =>
    Array.isArray(v) ? v.map((x) => [k, x] as const) : [[k, v] as const]
  );
  w.varint(headers.length);
  for (const [k, v] of headers) {
    w.varBytes(k);
    w.varBytes(v as string | Uint8Array);
  }
  w.placeVarintBefore(lengthAt, bodyAt, w.length - bodyAt);
}

/** Whether every message is one this encoder writes exactly as kafkajs does. */
function plain(messages: ProduceMessage[]): boolean {
  for (const m of messages) {
    if (m.timestamp !== null && m.timestamp !== undefined) return false;
    if (!bytesLike(m.key, true) || !bytesLike(m.value, true)) return false;
    const h = m.headers;
    if (h !== undefined && (typeof h !== "object" || h === null)) return false;
    for (const v of Object.values(h ?? {})) {
      const vs = Array.isArray(v) ? v : [v];
      if (!vs.every((x) => bytesLike(x, false))) return false;
    }
  }
  return true;
}

/** Whether `s` surely fits an int16 length (kafkajs throws past it; a DataView would wrap). */
function shortString(s: unknown): boolean {
  return typeof s === "string" && s.length * 3 <= 0x7fff;
}

function bytesLike(v: unknown, nullable: boolean): boolean {
  return typeof v === "string" || isBuffer(v) ||
    (nullable && (v === null || v === undefined));
}

/** A producer id as a bigint (kafkajs passes a number, a string or its Long). */
function int64(v: unknown): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  const inner = (v as { value?: unknown } | null)?.value;
  return typeof inner === "bigint" ? inner : undefined;
}
