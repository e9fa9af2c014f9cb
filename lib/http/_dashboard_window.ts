/** @module The dashboard's time window: the span the user picked, its anchor and its chart buckets. */
import type { Transaction } from "../sink/db.ts";

/** The windows the dashboard offers. */
export const WINDOW_KEYS = ["1h", "24h", "7d", "all"] as const;

/** One of {@linkcode WINDOW_KEYS}. */
export type WindowKey = typeof WINDOW_KEYS[number];

/** `[from, to)` in whole buckets, what it is relative to, and how wide each chart bar is. */
export interface TimeWindow {
  key: WindowKey;
  at: Date;
  newestMs: number | null;
  mode: "live" | "replay" | "empty";
  from: Date;
  to: Date;
  bucketMinutes: number;
}

const SPAN_MINUTES: Record<Exclude<WindowKey, "all">, number> = {
  "1h": 60,
  "24h": 1440,
  "7d": 10_080,
};
/** Bar widths that read well on an axis, in minutes (up to a year). */
const NICE_BUCKETS = [1, 5, 15, 30, 60, 120, 360, 720, 1440, 10_080, 43_200];
/** At most this many bars in the chart. */
const MAX_BARS = 120;

/** True for a known window key. */
export function isWindowKey(s: string): s is WindowKey {
  return (WINDOW_KEYS as readonly string[]).includes(s);
}

/**
 * Reads the window: live (ending now) when the newest event is under an hour old, else a replay
 * ending at the newest event. Without a key, live data shows the last hour and a replay shows
 * everything, so recorded data is seen whole.
 */
export async function readWindow(
  tx: Transaction,
  { key, now }: { key?: WindowKey; now: Date },
): Promise<TimeWindow> {
  // Backward and forward scans of the event_time index: one row each.
  const [span] = await tx<{ newest: Date | null; oldest: Date | null }[]>`
    select (select max(event_time) from wiki_recent_changes) as newest,
      (select min(event_time) from wiki_recent_changes) as oldest`;
  const newestMs = span?.newest?.getTime() ?? null;
  const mode = newestMs === null
    ? "empty"
    : newestMs >= now.getTime() - 60 * 60_000
    ? "live"
    : "replay";
  const chosen: WindowKey = key ?? (mode === "replay" ? "all" : "1h");
  const anchor = mode === "replay" ? newestMs! : now.getTime();
  const end = Math.floor(anchor / 60_000) * 60_000 + 60_000;
  const minutes = chosen === "all"
    ? Math.max(1, Math.ceil((end - (span?.oldest?.getTime() ?? end)) / 60_000))
    : SPAN_MINUTES[chosen];
  const bucketMinutes = NICE_BUCKETS.find((b) => minutes / b <= MAX_BARS) ??
    NICE_BUCKETS.at(-1)!;
  const bucketMs = bucketMinutes * 60_000;
  // Whole buckets aligned to the epoch, covering [end - minutes, end).
  const to = Math.ceil(end / bucketMs) * bucketMs;
  const from = Math.floor((end - minutes * 60_000) / bucketMs) * bucketMs;
  return {
    key: chosen,
    at: now,
    newestMs,
    mode,
    from: new Date(from),
    to: new Date(to),
    bucketMinutes,
  };
}
