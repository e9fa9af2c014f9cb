/** @module The producer's liveness: every wiki polled recently; retention gaps in the details. */
import type { CheckResult } from "../http/app.ts";
import type { PollerStats } from "../source/poller.ts";

/**
 * Unhealthy when a wiki has gone `stallMs` without a successful poll. A retention gap is
 * permanent, so it is reported in the details without turning the check unhealthy (a restart
 * cannot bring purged rows back; `deno task audit` lists what is missing).
 */
export function producerHealth(
  stats: Map<string, PollerStats>,
  options: { started: number; stallMs: number; now?: number },
): CheckResult {
  const now = options.now ?? Date.now();
  const stalled = [...stats].filter(([, s]) =>
    now - (s.lastSuccessMs || options.started) > options.stallMs
  ).map(([h]) => h);
  const gapList = [...stats].filter(([, s]) => s.gap).map((
    [h, s],
  ) => [h, s.gap]);
  const gaps = gapList.length
    ? { gaps: Object.fromEntries(gapList) }
    : undefined;
  if (stalled.length === 0) {
    return gaps ? { ok: true, details: gaps } : { ok: true };
  }
  return {
    ok: false,
    reason: `No successful poll for ${options.stallMs / 1000} s`,
    details: { wikis: stalled, ...gaps },
  };
}
