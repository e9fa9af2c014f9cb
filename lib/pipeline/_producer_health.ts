/** @module The producer's liveness and each wiki's source status (last success, last error, retry); retention gaps in the details. */
import type { CheckResult, SourceStatus } from "../http/app.ts";
import type { PollerStats } from "../source/poller.ts";

/** What {@linkcode sourceStatuses} and {@linkcode producerHealth} read. */
export interface SourceWatch {
  stats: Map<string, PollerStats>;
  /** When polling started (a wiki without a success yet counts from here). */
  started: number;
  /** No success for this long is a stall. */
  stallMs: number;
  now?: () => number;
}

/** Each wiki's status, in the configured order. */
export function sourceStatuses(watch: SourceWatch): SourceStatus[] {
  const now = (watch.now ?? Date.now)();
  return [...watch.stats].map(([wiki, s]) => {
    const since = s.lastSuccessMs || watch.started;
    const state: SourceStatus["state"] = now - since > watch.stallMs
      ? "stalled"
      : s.retryAtMs > 0
      ? "retrying"
      : s.lastSuccessMs === 0
      ? "starting"
      : "ok";
    return {
      wiki,
      state,
      last_success: s.lastSuccessMs
        ? new Date(s.lastSuccessMs).toISOString()
        : null,
      last_error: s.lastError && {
        at: new Date(s.lastError.atMs).toISOString(),
        name: s.lastError.name,
        message: s.lastError.message,
      },
      retry_in_seconds: s.retryAtMs > 0
        ? Math.max(0, Math.ceil((s.retryAtMs - now) / 1000))
        : null,
    };
  });
}

/**
 * Unhealthy once a wiki had no successful poll for `stallMs`; the reason names the wikis and
 * their last errors, and the details always list every wiki's source status. A retention gap is
 * permanent, so it is reported in the details without turning the check unhealthy (a restart
 * cannot bring purged rows back; `deno task audit` lists what is missing).
 */
export function producerHealth(watch: SourceWatch): CheckResult {
  const sources = sourceStatuses(watch);
  const gapList = [...watch.stats].filter(([, s]) => s.gap).map((
    [h, s],
  ) => [h, s.gap]);
  const gaps = gapList.length
    ? { gaps: Object.fromEntries(gapList) }
    : undefined;
  const stalled = sources.filter((s) => s.state === "stalled");
  if (stalled.length === 0) {
    return { ok: true, details: { sources, ...gaps } };
  }
  const named = stalled.map((s) =>
    s.last_error
      ? `${s.wiki} (last error: ${s.last_error.name}: ${s.last_error.message})`
      : s.wiki
  );
  return {
    ok: false,
    reason: `No successful poll for ${watch.stallMs / 1000} s: ${
      named.join("; ")
    }`,
    details: { wikis: stalled.map((s) => s.wiki), sources, ...gaps },
  };
}
