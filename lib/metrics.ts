/** @module Prometheus text exposition of the producer's and consumer's counters. */
import type { PollerStats } from "./poller.ts";
import type { ConsumerStats } from "./consume.ts";

/** What to expose. */
export interface MetricsSources {
  producer?: Map<string, PollerStats>;
  consumer?: ConsumerStats;
}

/** Renders the counters in Prometheus text format 0.0.4. */
export function renderMetrics(sources: MetricsSources): string {
  const out: string[] = [];
  const metric = (
    name: string,
    type: string,
    help: string,
    samples: [Record<string, string>, number][],
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) =>
        `${k}="${
          v.replace(/["\\\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))
        }"`
      ).join(",");
      out.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  };
  if (sources.producer) {
    const p = [...sources.producer];
    metric(
      "wikistream_polls_total",
      "counter",
      "Recent-changes pages fetched",
      p.map(([h, s]) => [{ wiki: h }, s.polls]),
    );
    metric(
      "wikistream_published_total",
      "counter",
      "Changes published to Kafka",
      p.map(([h, s]) => [{ wiki: h }, s.published]),
    );
    metric(
      "wikistream_rejected_total",
      "counter",
      "Rows published to the rejects topic",
      p.map(([h, s]) => [{ wiki: h }, s.rejected]),
    );
    metric(
      "wikistream_poll_duplicates_total",
      "counter",
      "Rows skipped as already published (overlap)",
      p.map(([h, s]) => [{ wiki: h }, s.duplicates]),
    );
    metric(
      "wikistream_api_errors_total",
      "counter",
      "Wikimedia API errors by kind",
      p.flatMap(([h, s]) =>
        Object.entries(s.apiErrors).map(([k, n]) =>
          [{ wiki: h, kind: k }, n] as [Record<string, string>, number]
        )
      ),
    );
  }
  if (sources.consumer) {
    const c = sources.consumer;
    metric("wikistream_consumed_total", "counter", "Records read from Kafka", [[
      {},
      c.consumed,
    ]]);
    metric(
      "wikistream_written_total",
      "counter",
      "Rows newly inserted into PostgreSQL",
      [[{}, c.written]],
    );
    metric(
      "wikistream_duplicates_skipped_total",
      "counter",
      "Rows already present (replays)",
      [[{}, c.duplicates]],
    );
    metric(
      "wikistream_dead_lettered_total",
      "counter",
      "Records dead-lettered",
      [[{}, c.deadLettered]],
    );
    metric("wikistream_batches_total", "counter", "Batches written", [[
      {},
      c.batches,
    ]]);
    metric(
      "wikistream_db_errors_total",
      "counter",
      "Database write attempts that failed",
      [[{}, c.dbErrors]],
    );
  }
  return out.join("\n") + "\n";
}
