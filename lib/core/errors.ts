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

/** A record that cannot be decoded; it is dead-lettered, never retried. */
export class DecodeError extends Error {
  readonly retriable = false;
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
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
