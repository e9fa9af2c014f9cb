/** @module The poller's failure handling: count by code, log, and sleep an exponential backoff. */
import type { Logger } from "../core/log.ts";
import { backoffDelay, retryAfterOf } from "../core/retry.ts";
import { isFatal, UpstreamError } from "../core/errors.ts";

/** Options for {@linkcode PollBackoff}. */
export interface PollBackoffOptions {
  host: string;
  log: Logger;
  signal: AbortSignal;
  /** Failures are counted here by error code. */
  stats: { apiErrors: Record<string, number> };
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
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
    log.warn("poll failed, retrying", { host, err, delay_ms: delay, failures });
    await sleep(delay, signal);
  }

  /** After a success: the next failure starts the backoff over. */
  reset(): void {
    this.#failures = 0;
  }
}
