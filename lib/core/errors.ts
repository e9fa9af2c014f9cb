/** @module The project's typed errors and the one function that classifies any error as retriable. */

/** A bad configuration value; the process exits with code 2. */
export class ConfigError extends Error {
  readonly retriable = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/** An upstream HTTP/API failure (Wikimedia); `retryAfterMs` carries the server's Retry-After. */
export class UpstreamError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(
    status: number,
    code: string,
    message: string,
    options?: ErrorOptions & { retriable?: boolean; retryAfterMs?: number },
  ) {
    super(message, options);
    this.name = "UpstreamError";
    this.status = status;
    this.code = code;
    this.retriable = options?.retriable ??
      (status === 0 || status === 429 || status >= 500);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** Why a record cannot be decoded (a dead letter's `reason`). */
export type DecodeReason =
  | "empty"
  | "too_large"
  | "not_json"
  | "bad_envelope"
  | "bad_text"
  | "bad_row";

/**
 * Every reason a dead letter can have: a row PostgreSQL rejected for its data, a decode failure,
 * or `decode_failed` (an unexpected error while decoding).
 */
export const DEAD_LETTER_REASONS = [
  "database_rejected",
  "empty",
  "too_large",
  "not_json",
  "bad_envelope",
  "bad_text",
  "bad_row",
  "decode_failed",
] as const satisfies readonly (
  DecodeReason | "database_rejected" | "decode_failed"
)[];

/** A record that cannot be decoded; it is dead-lettered, never retried. */
export class DecodeError extends Error {
  readonly retriable = false;
  readonly reason: DecodeReason;
  constructor(reason: DecodeReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DecodeError";
    this.reason = reason;
  }
}

/** Thrown by `retry()` when every attempt failed; `cause` is the last error. */
export class RetryError extends Error {
  readonly retriable = false;
  readonly attempts: number;
  constructor(cause: unknown, attempts: number) {
    super(`Retrying exceeded the maximum number of attempts (${attempts})`, {
      cause,
    });
    this.name = "RetryError";
    this.attempts = attempts;
  }
}

/**
 * This producer's transactional id was taken over by a newer producer (Kafka's PRODUCER_FENCED or
 * INVALID_PRODUCER_EPOCH). Fatal: the process stops for good instead of reconnecting and
 * publishing from a stale cursor; `cause` is the broker's error.
 */
export class FencedError extends Error {
  readonly retriable = false;
  readonly transactionalId: string;
  constructor(transactionalId: string, options?: ErrorOptions) {
    super(
      `Cannot publish: transactional id "${transactionalId}" is in use by a newer producer (fenced)`,
      options,
    );
    this.name = "FencedError";
    this.transactionalId = transactionalId;
  }
}

/** PostgreSQL error classes worth retrying: connection, resources, serialization, shutdown. */
const RETRIABLE_PG_CLASSES = ["08", "40", "53", "57", "58"];
const RETRIABLE_NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/** Whether an error (ours, kafkajs's, postgres.js's or the network's) is worth retrying. */
export function isRetriable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { retriable?: unknown; code?: unknown };
  if (typeof e.retriable === "boolean") return e.retriable;
  if (e.name === "AbortError") return false;
  if (e.name === "TimeoutError") return true;
  if (typeof e.code === "string") {
    if (RETRIABLE_NET_CODES.has(e.code)) return true;
    if (e.name === "PostgresError") {
      return RETRIABLE_PG_CLASSES.includes(e.code.slice(0, 2));
    }
  }
  if (e instanceof TypeError && /fetch|network|connect/i.test(e.message)) {
    return true;
  }
  return false;
}

/** kafkajs protocol error types that no restart can cure: credentials, ACLs, fencing, bad topic config. */
const FATAL_KAFKA_TYPES = new Set([
  "SASL_AUTHENTICATION_FAILED",
  "UNSUPPORTED_SASL_MECHANISM",
  "ILLEGAL_SASL_STATE",
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_REPLICATION_FACTOR",
  "POLICY_VIOLATION",
]);
/** PostgreSQL codes a restart cannot cure: authentication and a missing database. */
const FATAL_PG_CODES = new Set(["28P01", "28000", "3D000"]);

/**
 * Whether an error means the configuration is wrong (exit), not that a dependency is away
 * (wait and restart): ConfigError, bad credentials (kafkajs SASL, PostgreSQL 28P01/28000), a
 * missing database, missing permissions (which include creating an unknown topic when
 * auto-create is off) and a fenced transactional producer. Everything else, kafkajs's
 * "non-retriable" errors after its own retries included, is an outage.
 */
export function isFatal(err: unknown): boolean {
  for (const e of causeChain(err)) {
    if (e instanceof ConfigError || e instanceof FencedError) return true;
    if (e.name === "KafkaJSSASLAuthenticationError") return true;
    const { type, code } = e as { type?: unknown; code?: unknown };
    if (typeof type === "string" && FATAL_KAFKA_TYPES.has(type)) return true;
    if (
      e.name === "PostgresError" && typeof code === "string" &&
      FATAL_PG_CODES.has(code)
    ) return true;
  }
  return false;
}

/** "kafka" when kafkajs raised the error, "postgresql" when postgres.js did, else undefined. */
export function dependencyOf(err: unknown): string | undefined {
  for (const e of causeChain(err)) {
    if (e.name.startsWith("KafkaJS")) return "kafka";
    const code = (e as { code?: unknown }).code;
    if (
      e.name === "PostgresError" ||
      (typeof code === "string" && /^(CONNECTION_|CONNECT_TIMEOUT)/.test(code))
    ) return "postgresql";
  }
  return undefined;
}

/** A short, secret-free description: the error's class and its innermost code, if any. */
export function describeError(err: unknown): string {
  const chain = causeChain(err);
  if (chain.length === 0) return String(err);
  const code = chain.map((e) => (e as { code?: unknown; type?: unknown }))
    .map((e) => typeof e.type === "string" ? e.type : e.code)
    .filter((c) => typeof c === "string").at(-1);
  return code ? `${chain[0]!.name} (${code})` : chain[0]!.name;
}

/** The error and its causes (kafkajs's `originalError` too), outermost first. */
function causeChain(err: unknown): Error[] {
  const out: Error[] = [];
  let e: unknown = err;
  while (e instanceof Error && out.length < 8 && !out.includes(e)) {
    out.push(e);
    const next = e as { cause?: unknown; originalError?: unknown };
    e = next.cause ?? next.originalError;
  }
  return out;
}

/**
 * Whether a PostgreSQL error is about one row's data, so that the row (and only it) may be
 * dead-lettered: class 22 (data exception), 23 (integrity constraint violation), or 54000 (a
 * value past a limit, e.g. "index row requires 27024 bytes, maximum size is 8191" for a huge
 * title). Everything else (a lock timeout, a revoked grant, a missing column, a read-only or
 * failing server) is about the database, and is retried without dead-lettering anything.
 */
export function isRowError(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === "PostgresError" && typeof e.code === "string" &&
    (/^(22|23)/.test(e.code) || e.code === "54000");
}

/**
 * The error's class, code and message, fit for an endpoint or a health reason: the password of
 * any URL in the message is masked, and the whole is cut to 300 characters.
 */
export function explainError(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  const name = String(e?.name ?? "Error");
  const code = typeof e?.code === "string" ? ` (${e.code})` : "";
  const message = String(e?.message ?? err)
    .replace(/(\/\/[^:@\/\s]*:)[^@\s]*@/g, "$1***@")
    .replace(/(password\s*[=:]\s*)\S+/gi, "$1***");
  return `${name}${code}: ${message}`.slice(0, 300);
}
