/** @module The kafkajs client: connection settings, security from the config, record types. */
import {
  type Admin,
  Kafka,
  type LogEntry,
  logLevel as KafkaLogLevel,
  type SASLOptions,
} from "kafkajs";
import { type Config, readCaFile } from "../core/config.ts";
import type { Logger } from "../core/log.ts";
import "./_request_queue_fix.ts";
import "./_produce_encoder.ts";

/** A record to publish. */
export interface OutRecord {
  topic: string;
  key: string | null;
  value: string;
  headers?: Record<string, string>;
}

/** A record as consumed. */
export interface InRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
  timestamp: string;
}

/** SASL credentials for {@linkcode createKafka}. */
export interface KafkaSasl {
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  username: string;
  password: string;
}

/** Connection settings for {@linkcode createKafka}. */
export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  log: Logger;
  /** TLS: `true` trusts the system CAs; `{ ca }` trusts these PEM certificates instead. */
  ssl?: boolean | { ca: string };
  sasl?: KafkaSasl;
}

/** The security settings of the config, for {@linkcode createKafka}; reads the CA file once. */
export function kafkaSecurity(
  config: Pick<
    Config,
    | "KAFKA_SSL"
    | "KAFKA_SSL_CA_FILE"
    | "KAFKA_SASL_MECHANISM"
    | "KAFKA_SASL_USERNAME"
    | "KAFKA_SASL_PASSWORD"
  >,
): Pick<KafkaOptions, "ssl" | "sasl"> {
  const ssl = config.KAFKA_SSL_CA_FILE !== undefined
    ? { ca: readCaFile(config.KAFKA_SSL_CA_FILE, "KAFKA_SSL_CA_FILE") }
    : config.KAFKA_SSL;
  if (config.KAFKA_SASL_MECHANISM === "none") return { ssl };
  return {
    ssl,
    sasl: {
      mechanism: config.KAFKA_SASL_MECHANISM,
      username: config.KAFKA_SASL_USERNAME ?? "",
      password: config.KAFKA_SASL_PASSWORD ?? "",
    },
  };
}

/** Creates the kafkajs client with its logs routed into ours. */
export function createKafka(options: KafkaOptions): Kafka {
  const log = options.log.with({ component: "kafkajs" });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(options.ssl
      ? { ssl: options.ssl === true ? true : { ca: [options.ssl.ca] } }
      : {}),
    ...(options.sasl ? { sasl: { ...options.sasl } as SASLOptions } : {}),
    connectionTimeout: 5000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => (entry) => forwardKafkaLog(log, entry),
  });
}

export type { Admin, Kafka };

/** Writes one kafkajs log entry to our logger, at the level it deserves. */
function forwardKafkaLog(log: Logger, { level, log: entry }: LogEntry): void {
  const { message, timestamp: _t, logger: _l, ...fields } = entry;
  // Our transactional producer keeps kafkajs's finite retries on purpose (a send must fail
  // eventually so the poll loop can back off and shut down); its warning about that is noise.
  if (
    String(message).startsWith(
      "Limiting retries for the idempotent producer",
    )
  ) return;
  const fn = level > KafkaLogLevel.WARN ||
      isTransactionSettling(message, fields) || repeated(message, fields)
    ? log.debug
    : level <= KafkaLogLevel.ERROR && !isRetrying(message, fields)
    ? log.error
    : log.warn;
  fn(message, fields);
}

/** When each kafkajs message (with its error) was last logged above debug. */
const lastLogged = new Map<string, number>();
/** During an outage kafkajs repeats the same line on every retry: once a minute is enough. */
const REPEAT_MS = 60_000;

/** Whether the same message and error were already logged within the last minute. */
function repeated(message: unknown, fields: Record<string, unknown>): boolean {
  const key = `${message}|${fields.error ?? ""}`;
  const now = Date.now();
  const last = lastLogged.get(key);
  if (last !== undefined && now - last < REPEAT_MS) return true;
  if (lastLogged.size > 1000) lastLogged.clear();
  lastLogged.set(key, now);
  return false;
}

/** kafkajs's text of CONCURRENT_TRANSACTIONS (protocol error 51). */
const CONCURRENT_TRANSACTIONS =
  "another concurrent operation on the same transaction was ongoing";

/**
 * CONCURRENT_TRANSACTIONS on the first send of a transaction: the coordinator answered the
 * previous commit's EndTxn before writing its commit markers, and refuses AddPartitionsToTxn
 * until it has. Every back-to-back transaction meets it; the broker expects the client to retry
 * (the Java client retries it every 20 ms and logs it at debug, KAFKA-5477), and so does ours
 * (lib/kafka/publisher.ts). If the retries run out, the send fails and that is logged.
 */
function isTransactionSettling(
  message: unknown,
  fields: Record<string, unknown>,
): boolean {
  const text = String(message);
  return String(fields.error ?? text).includes(CONCURRENT_TRANSACTIONS) &&
    (text.startsWith("Response AddPartitionsToTxn") ||
      (text.startsWith("Failed to send messages") && "retryCount" in fields));
}

/** kafkajs logs retriable protocol errors at ERROR before retrying them itself: warnings. */
function isRetrying(message: unknown, fields: Record<string, unknown>) {
  return "retryCount" in fields || String(message).startsWith("Response ");
}
