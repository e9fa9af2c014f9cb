/** @module `deno task consume`: reads the topic in batches and writes them into PostgreSQL. */
import { boot, helpRequested, printUsage } from "./lib/core/cli.ts";
import { ConfigError } from "./lib/core/errors.ts";
import { serve } from "./lib/http/serve.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { createMetrics } from "./lib/http/metrics.ts";
import { superviseConsumer } from "./lib/pipeline/supervise.ts";
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
  const { sup, stats, housekeepingStats } = superviseConsumer(config, {
    log,
    signal: life.signal,
  }, { metrics, idleExitMs: flags.idleExitMs });
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
