/** @module `deno task consume`: reads the topic in batches and writes them into PostgreSQL. */
import { boot, helpRequested, printUsage } from "./lib/core/cli.ts";
import { ConfigError, dependencyOf } from "./lib/core/errors.ts";
import { serve } from "./lib/http/serve.ts";
import { startConsumer } from "./lib/pipeline/consumer.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { createMetrics } from "./lib/http/metrics.ts";
import { createSupervisor } from "./lib/core/supervisor.ts";
import { newConsumerStats } from "./lib/sink/batch_handler.ts";
import { newHousekeepingStats } from "./lib/sink/housekeeping.ts";
import {
  supervisedHealth,
  supervisedReady,
  supervisionSamples,
} from "./lib/pipeline/supervised.ts";
import { currentDashboard, currentLag } from "./lib/pipeline/_current.ts";

/** Runs the consumer; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  if (helpRequested(args)) return printUsage("consume");
  const booted = boot("consumer", args, ["idleExitMs"]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const metrics = createMetrics();
  const stats = newConsumerStats();
  const housekeepingStats = newHousekeepingStats();
  const sup = createSupervisor({
    name: "consumer",
    dependencies: ["kafka", "postgresql"],
    // Raw socket errors come from postgres.js: kafkajs wraps its own.
    dependencyOf: (err) => dependencyOf(err) ?? "postgresql",
    log,
    signal: life.signal,
    start: (signal) =>
      startConsumer(config, {
        log,
        signal,
        stats,
        housekeepingStats,
        idleExitMs: flags.idleExitMs,
        stallMs: config.HEALTH_STALL_SECONDS * 1000,
        onBatch: (n, ms) => metrics.observeBatch(n, ms / 1000),
        onDatabase: (up) => sup.mark("postgresql", up),
      }),
  });
  const lag = currentLag(sup);
  const app = createApp({
    service: "consumer",
    health: () => supervisedHealth(sup),
    ready: () => supervisedReady(sup),
    lag,
    metrics: () =>
      metrics.render({
        consumer: stats,
        housekeeping: housekeepingStats,
        lag,
        supervision: supervisionSamples({ consumer: sup }),
      }),
    dashboard: currentDashboard(sup),
    authToken: config.HTTP_AUTH_TOKEN,
  });
  let server;
  try {
    // Bind before joining the group: a busy port must not cost the group a rebalance.
    server = serve(app, {
      hostname: config.HTTP_HOST,
      port: config.HTTP_PORT,
      signal: life.signal,
      log,
      authenticated: config.HTTP_AUTH_TOKEN !== undefined,
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error(err.message, { error: "ConfigError" });
    return 2;
  }
  let code = 0;
  try {
    await sup.run();
  } catch (err) {
    log.error("consumer failed", { err });
    code = 1;
  }
  life.stop("stop");
  await sup.current()?.close();
  await server.finished;
  log.info("stopped", { code, written: stats.written });
  return code;
}

if (import.meta.main) Deno.exit(await main());
