/** @module `deno task consume`: reads the topic in batches and writes them into PostgreSQL. */
import { boot } from "./lib/core/cli.ts";
import { serve } from "./lib/http/serve.ts";
import { startConsumer } from "./lib/pipeline/consumer.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { createMetrics } from "./lib/http/metrics.ts";
import { createDashboardData } from "./lib/http/dashboard_data.ts";

/** Runs the consumer; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  const booted = boot("consumer", args, ["idleExitMs"]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const metrics = createMetrics();
  let consumer;
  try {
    consumer = await startConsumer(config, {
      log,
      signal: life.signal,
      idleExitMs: flags.idleExitMs,
      stallMs: config.HEALTH_STALL_SECONDS * 1000,
      onBatch: (n, ms) => metrics.observeBatch(n, ms / 1000),
    });
  } catch (err) {
    log.error("cannot start consumer", { err });
    return 1;
  }
  const app = createApp({
    service: "consumer",
    health: consumer.health,
    ready: consumer.ready,
    lag: consumer.lag,
    metrics: () =>
      metrics.render({
        consumer: consumer.stats,
        housekeeping: consumer.housekeeping,
        lag: consumer.lag,
      }),
    dashboard: createDashboardData(consumer.sql),
  });
  const server = serve(app, {
    hostname: config.HTTP_HOST,
    port: config.HTTP_PORT,
    signal: life.signal,
    log,
  });
  let code = 0;
  try {
    await consumer.done;
  } catch (err) {
    log.error("consumer failed", { err });
    code = 1;
  }
  life.stop("stop");
  await consumer.close();
  await server.finished;
  log.info("stopped", { code, written: consumer.stats.written });
  return code;
}

if (import.meta.main) Deno.exit(await main());
