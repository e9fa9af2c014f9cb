/** @module Bounded cost per endpoint: callers within one interval share one call and its answer. */

/**
 * Wraps `fn` so it starts at most once per `intervalMs`: every caller in between gets the same
 * promise (its value or its error), however many clients ask.
 */
export function sharedFor<T>(
  fn: () => Promise<T>,
  intervalMs: number,
  now: () => number = Date.now,
): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const t = now();
    if (last === undefined || t - last.at >= intervalMs) {
      last = { at: t, value: fn() };
      last.value.catch(() => {}); // a caller handles it; never an unhandled rejection here
    }
    return last.value;
  };
}
