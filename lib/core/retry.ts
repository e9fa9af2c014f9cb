/** @module A small retry with capped exponential backoff and jitter (std's contract). */
import { setTimeout as sleepFor } from "node:timers/promises";
import { isRetriable as defaultIsRetriable, RetryError } from "./errors.ts";

/** Options for {@linkcode retry} and {@linkcode backoffDelay}. */
export interface RetryOptions {
  maxAttempts?: number;
  minTimeout?: number;
  maxTimeout?: number;
  multiplier?: number;
  jitter?: number;
  isRetriable?: (err: unknown) => boolean;
  /** Called before each wait; `delayMs` may be raised by the error's own Retry-After. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Backoff for attempt `n` (0-based): `min(cap, base * mult ** n) * (1 - jitter * random)`. */
export function backoffDelay(
  attempt: number,
  options: RetryOptions = {},
): number {
  const {
    minTimeout = 1000,
    maxTimeout = 60_000,
    multiplier = 2,
    jitter = 0.5,
  } = options;
  const exp = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
  return Math.round(exp * (1 - jitter * Math.random()));
}

/** Sleeps for `ms`, rejecting with an AbortError when `signal` aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleepFor(ms, undefined, { signal });
}

/** Calls `fn` until it succeeds, a non-retriable error occurs, or attempts run out. */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5;
  const check = options.isRetriable ?? defaultIsRetriable;
  const wait = options.sleep ?? sleep;
  for (let attempt = 0;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.signal?.aborted || !check(err)) throw err;
      if (attempt + 1 >= maxAttempts) throw new RetryError(err, attempt + 1);
      const delay = Math.max(backoffDelay(attempt, options), retryAfterOf(err));
      options.onRetry?.(err, attempt + 1, delay);
      await wait(delay, options.signal);
    }
  }
}

/** The server-requested wait carried by an error (`retryAfterMs`), or 0. */
export function retryAfterOf(err: unknown): number {
  const ms = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === "number" && ms > 0 ? ms : 0;
}
