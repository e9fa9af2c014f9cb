/** createMetrics(): Prometheus text from the producer's and consumer's counters. */
import assert from "node:assert/strict";
import { createMetrics, renderMetrics } from "../../lib/http/metrics.ts";
import { newConsumerStats } from "../../lib/sink/batch_handler.ts";
import { newPollerStats } from "../../lib/source/poller.ts";

Deno.test("renderMetrics() exposes producer counters per wiki and API errors by kind", async () => {
  const s = newPollerStats();
  Object.assign(s, { polls: 4, published: 10, rejected: 1, duplicates: 2 });
  s.apiErrors = { maxlag: 3, http_429: 1 };
  const text = await renderMetrics({
    producer: new Map([["en.wikipedia.org", s]]),
  });
  assert.match(text, /^wikistream_polls_total\{wiki="en.wikipedia.org"\} 4$/m);
  assert.match(
    text,
    /^wikistream_events_polled_total\{wiki="en.wikipedia.org"\} 13$/m,
  );
  assert.match(
    text,
    /^wikistream_published_total\{wiki="en.wikipedia.org"\} 10$/m,
  );
  assert.match(
    text,
    /^wikistream_api_errors_total\{wiki="en.wikipedia.org",kind="maxlag"\} 3$/m,
  );
  assert.match(text, /^# TYPE wikistream_api_errors_total counter$/m);
  assert.doesNotMatch(text, /wikistream_written_total/);
});

Deno.test("createMetrics() exposes consumer counters, batch histograms and lag gauges", async () => {
  const metrics = createMetrics();
  metrics.observeBatch(120, 0.04);
  metrics.observeBatch(3, 0.002);
  const stats = newConsumerStats();
  Object.assign(stats, { consumed: 123, written: 120, duplicates: 3 });
  const text = await metrics.render({
    consumer: stats,
    lag: () =>
      Promise.resolve({
        partitions: [{ partition: 0, lag: "5" }, { partition: 1, lag: "0" }],
        total_lag: "5",
        time_lag_seconds: 42,
      }),
  });
  assert.match(text, /^wikistream_consumed_total 123$/m);
  assert.match(text, /^wikistream_duplicates_skipped_total 3$/m);
  assert.match(text, /^wikistream_batch_records_bucket\{le="5"\} 1$/m);
  assert.match(text, /^wikistream_batch_records_sum 123$/m);
  assert.match(text, /^wikistream_batch_duration_seconds_count 2$/m);
  assert.match(text, /^wikistream_consumer_lag\{partition="0"\} 5$/m);
  assert.match(text, /^wikistream_consumer_lag_total 5$/m);
  assert.match(text, /^wikistream_consumer_time_lag_seconds 42$/m);
});

Deno.test("createMetrics() leaves the lag gauges out when lag cannot be read", async () => {
  const text = await createMetrics().render({
    consumer: newConsumerStats(),
    lag: () => Promise.reject(new Error("Kafka unavailable")),
  });
  assert.match(text, /^wikistream_written_total 0$/m);
  assert.doesNotMatch(text, /wikistream_consumer_lag/);
});
