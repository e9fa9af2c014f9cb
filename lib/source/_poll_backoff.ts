/** @module The poller's failure handling: count by code, log, and sleep an exponential backoff. */
import type { Logger } from "../core/log.ts";
import { backoffDelay, retryAfterOf } from "../core/retry.ts";
import { isFatal, UpstreamError } from "../core/errors.ts";

/** The last failure of a source, as /healthz and the dashboard show it. */
export interface SourceError {
  atMs: number;
  name: string;
  message: string;
}

/** What a failure updates: counts by error code, the last error, when the retry is due. */
export interface FailureStats {
  apiErrors: Record<string, number>;
  lastError: SourceError | null;
  /** When the next attempt starts while waiting out a backoff; 0 otherwise. */
  retryAtMs: number;
}

/** Options for {@linkcode PollBackoff}. */
export interface PollBackoffOptions {
  host: string;
  log: Logger;
  signal: AbortSignal;
  /** Failures are counted and recorded here. */
  stats: FailureStats;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/** Counts and logs each failure, then sleeps its backoff; once `signal` aborts it rethrows. */
export class PollBackoff {
  #options: PollBackoffOptions;
  #failures = 0;

  constructor(options: PollBackoffOptions) {
    this.#options = options;
  }

  /** Handles one failure: rethrows on shutdown or a fatal error, else counts, logs and waits. */
  async failed(err: unknown): Promise<void> {
    const { host, log, signal, stats, sleep } = this.#options;
    // A fenced producer or rejected credentials: waiting cannot help, the process must stop.
    if (signal.aborted || isFatal(err)) throw err;
    const code = (err as { code?: string }).code ?? (err as Error).name ??
      "error";
    stats.apiErrors[code] = (stats.apiErrors[code] ?? 0) + 1;
    // The wiki gets up to 5 min of quiet; Kafka is retried within 30 s of its return.
    const maxTimeout = err instanceof UpstreamError ? 300_000 : 30_000;
    const delay = Math.max(
      backoffDelay(this.#failures, { minTimeout: 1000, maxTimeout }),
      retryAfterOf(err),
    );
    this.#failures++;
    const failures = this.#failures;
    const now = (this.#options.now ?? Date.now)();
    stats.lastError = recordedError(err, now);
    stats.retryAtMs = now + delay;
    log.warn("poll failed, retrying", { host, err, delay_ms: delay, failures });
    try {
      await sleep(delay, signal);
    } finally {
      stats.retryAtMs = 0;
    }
  }

  /** After a success: the next failure starts the backoff over. */
  reset(): void {
    this.#failures = 0;
  }
}

/** The error as shown to an operator: class and message (with its cause's), never a stack. */
function recordedError(err: unknown, atMs: number): SourceError {
  const e = err instanceof Error ? err : new Error(String(err));
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : "";
  return { atMs, name: e.name, message: `${e.message}${cause}`.slice(0, 300) };
}
