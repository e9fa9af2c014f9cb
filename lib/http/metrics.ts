/** @module Prometheus metrics (prom-client): pipeline counters, batch histograms and consumer lag. */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PollerStats } from "../source/poller.ts";
import type { ConsumerStats } from "../sink/batch_handler.ts";
import type { HousekeepingStats } from "../sink/housekeeping.ts";
import { STAGES } from "../core/stage_times.ts";

/** The lag figures exported as gauges (a consumer's `/lag` report satisfies it). */
export interface LagSource {
  partitions: { partition: number; lag: string }[];
  total_lag: string;
  time_lag_seconds: number | null;
}

/** One supervised service: its restarts and whether each dependency answers (1) or not (0). */
export interface SupervisionSample {
  service: string;
  restarts: number;
  dependencies: Map<string, number>;
}

/** What to expose; read at every scrape. */
export interface MetricsSources {
  producer?: Map<string, PollerStats>;
  consumer?: ConsumerStats;
  /** The consumer's partition housekeeping (retention). */
  housekeeping?: HousekeepingStats;
  supervision?: () => SupervisionSample[];
  /** Fetched at scrape time; a failure leaves the lag gauges out of that scrape. */
  lag?: () => Promise<LagSource>;
}

/** A process's metrics: histograms fed as batches complete, counters read from the stats. */
export interface Metrics {
  /** Records one written batch: its record count and how long the write took. */
  observeBatch(records: number, seconds: number): void;
  /** Renders every metric in Prometheus text format 0.0.4. */
  render(sources: MetricsSources): Promise<string>;
}

/** Creates the metrics registry of one process. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const sizes = new Histogram({
    name: "wikistream_batch_records",
    help: "Records per consumed batch",
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [registry],
  });
  const durations = new Histogram({
    name: "wikistream_batch_duration_seconds",
    help: "Time to write one batch into PostgreSQL (including retries)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    observeBatch(records, seconds) {
      sizes.observe(records);
      durations.observe(seconds);
    },
    async render(sources) {
      const scrape = new Registry();
      fillCounters(scrape, sources);
      if (sources.lag) {
        const lag = await sources.lag().catch(() => undefined);
        if (lag) fillLag(scrape, lag);
      }
      return await Registry.merge([scrape, registry]).metrics();
    },
  };
}

/** Renders the counters of `sources` alone (no batch histograms). */
export function renderMetrics(sources: MetricsSources): Promise<string> {
  return createMetrics().render(sources);
}

type Sample = [Record<string, string>, number];

function counter(
  registry: Registry,
  name: string,
  help: string,
  samples: Sample[],
) {
  const labelNames = [...new Set(samples.flatMap(([l]) => Object.keys(l)))];
  const c = new Counter({ name, help, labelNames, registers: [registry] });
  for (const [labels, value] of samples) c.inc(labels, value);
}

function fillCounters(r: Registry, sources: MetricsSources) {
  if (sources.producer) fillProducerCounters(r, sources.producer);
  if (sources.consumer) fillConsumerCounters(r, sources.consumer);
  if (sources.housekeeping) fillHousekeeping(r, sources.housekeeping);
  if (sources.supervision) fillSupervision(r, sources.supervision());
}

/** Partitions created ahead and dropped by retention (RETENTION_DAYS). */
function fillHousekeeping(r: Registry, h: HousekeepingStats) {
  const one = (name: string, help: string, v: number) =>
    counter(r, name, help, [[{}, v]]);
  one(
    "wikistream_partitions_created_total",
    "Monthly partitions of wiki_recent_changes created",
    h.partitionsCreated,
  );
  one(
    "wikistream_partitions_dropped_total",
    "Monthly partitions dropped by retention",
    h.partitionsDropped,
  );
  one(
    "wikistream_retention_rows_dropped_total",
    "Rows in the partitions dropped by retention (planner estimate)",
    h.rowsDropped,
  );
  one(
    "wikistream_housekeeping_failures_total",
    "Partition housekeeping passes that failed",
    h.failures,
  );
}

/** Restarts per service; each dependency up (1) unless some service waits for it (0). */
function fillSupervision(r: Registry, samples: SupervisionSample[]) {
  counter(
    r,
    "wikistream_restarts_total",
    "Restarts of a service after a dependency outage",
    samples.map((s): Sample => [{ service: s.service }, s.restarts]),
  );
  const up = new Map<string, number>();
  for (const s of samples) {
    for (const [d, v] of s.dependencies) up.set(d, Math.min(up.get(d) ?? 1, v));
  }
  const gauge = new Gauge({
    name: "wikistream_dependency_up",
    help: "1 when the dependency answers, 0 while the process waits for it",
    labelNames: ["dependency"],
    registers: [r],
  });
  for (const [dependency, v] of up) gauge.set({ dependency }, v);
}

/** Per-wiki counters of the pollers. */
function fillProducerCounters(
  r: Registry,
  producer: Map<string, PollerStats>,
) {
  const p = [...producer];
  const per = (f: (s: PollerStats) => number): Sample[] =>
    p.map(([wiki, s]) => [{ wiki }, f(s)]);
  counter(
    r,
    "wikistream_polls_total",
    "Recent-changes pages fetched",
    per((s) => s.polls),
  );
  counter(
    r,
    "wikistream_events_polled_total",
    "Changes received from the API (published, rejected or skipped as overlap)",
    per((s) => s.published + s.rejected + s.duplicates),
  );
  counter(
    r,
    "wikistream_published_total",
    "Changes published to Kafka",
    per((s) => s.published),
  );
  counter(
    r,
    "wikistream_rejected_total",
    "Rows published to the rejects topic",
    per((s) => s.rejected),
  );
  counter(
    r,
    "wikistream_poll_duplicates_total",
    "Rows skipped as already published (overlap)",
    per((s) => s.duplicates),
  );
  counter(
    r,
    "wikistream_reconciled_total",
    "Late rows found only by a reconcile pass",
    per((s) => s.reconciled),
  );
  const gap = new Gauge({
    name: "wikistream_retention_gap_seconds",
    help:
      "Span of changes lost because the start was older than the wiki keeps (0: none)",
    labelNames: ["wiki"],
    registers: [r],
  });
  for (const [wiki, s] of p) gap.set({ wiki }, s.gap?.lost_seconds ?? 0);
  counter(
    r,
    "wikistream_api_errors_total",
    "Wikimedia API errors by kind",
    p.flatMap(([wiki, s]) =>
      Object.entries(s.apiErrors).map(([kind, n]): Sample => [
        { wiki, kind },
        n,
      ])
    ),
  );
}

/** The consumer's counters (one sample each). */
function fillConsumerCounters(r: Registry, c: ConsumerStats) {
  const one = (name: string, help: string, v: number) =>
    counter(r, name, help, [[{}, v]]);
  one("wikistream_consumed_total", "Records read from Kafka", c.consumed);
  one(
    "wikistream_written_total",
    "Rows newly inserted into PostgreSQL",
    c.written,
  );
  one(
    "wikistream_duplicates_skipped_total",
    "Rows already present (replays)",
    c.duplicates,
  );
  one(
    "wikistream_dead_lettered_total",
    "Records dead-lettered",
    c.deadLettered,
  );
  one("wikistream_batches_total", "Batches written", c.batches);
  one(
    "wikistream_db_errors_total",
    "Database write attempts that failed",
    c.dbErrors,
  );
  counter(
    r,
    "wikistream_consumer_stage_seconds_total",
    "Time spent per consumer stage, summed over (concurrent) batches",
    STAGES.map((stage): Sample => [{ stage }, c.stages[stage] / 1000]),
  );
  counter(
    r,
    "wikistream_db_write_errors_total",
    "Database write attempts that failed, by SQLSTATE or error code (retried, never dead-lettered)",
    Object.entries(c.dbErrorsByCode).map(([code, n]): Sample => [{ code }, n]),
  );
  one(
    "wikistream_retention_lost_records_total",
    "Offsets deleted by retention before the consumer wrote them (rows lost for good)",
    Number(c.retention?.total ?? 0n),
  );
  new Gauge({
    name: "wikistream_db_write_failing_seconds",
    help:
      "How long database writes have been failing without a success (0: they succeed)",
    registers: [r],
  }).set(c.dbFailing ? (Date.now() - c.dbFailing.since) / 1000 : 0);
}

function fillLag(r: Registry, lag: LagSource) {
  const perPartition = new Gauge({
    name: "wikistream_consumer_lag",
    help: "Records not yet committed by the consumer group, per partition",
    labelNames: ["partition"],
    registers: [r],
  });
  for (const p of lag.partitions) {
    perPartition.set({ partition: String(p.partition) }, Number(p.lag));
  }
  new Gauge({
    name: "wikistream_consumer_lag_total",
    help: "Records not yet committed by the consumer group, all partitions",
    registers: [r],
  }).set(Number(lag.total_lag));
  if (lag.time_lag_seconds !== null) {
    new Gauge({
      name: "wikistream_consumer_time_lag_seconds",
      help: "Now minus the newest event time written",
      registers: [r],
    }).set(lag.time_lag_seconds);
  }
}
