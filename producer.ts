/** @module `deno task produce`: polls the configured wikis and publishes every change to Kafka. */
import { boot, helpRequested, printUsage } from "./lib/core/cli.ts";
import { ConfigError } from "./lib/core/errors.ts";
import { serve } from "./lib/http/serve.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { renderMetrics } from "./lib/http/metrics.ts";
import { superviseProducer } from "./lib/pipeline/supervise.ts";
import {
  supervisedHealth,
  supervisedReady,
  supervisionSamples,
} from "./lib/pipeline/supervised.ts";

/** Runs the producer; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  if (helpRequested(args)) return printUsage("produce");
  const booted = boot("producer", args, ["since", "until"]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const { sup, stats } = superviseProducer(
    config,
    { log, signal: life.signal },
    flags,
  );
  const app = createApp({
    service: "producer",
    health: () => supervisedHealth(sup),
    ready: () => supervisedReady(sup),
    sources: () => sup.current()?.sources() ?? [],
    metrics: () =>
      renderMetrics({
        producer: stats,
        supervision: supervisionSamples({ producer: sup }),
      }),
    authToken: config.HTTP_AUTH_TOKEN,
  });
  let server;
  try {
    server = serve(app, {
      hostname: config.HTTP_HOST,
      port: config.PRODUCER_HTTP_PORT,
      portVariable: "PRODUCER_HTTP_PORT",
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
    log.error("producer failed", { err });
    code = 1;
  }
  life.stop(flags.until ? "backfill complete" : "stop");
  await sup.current()?.close();
  await server.finished;
  log.info("stopped", { code });
  return code;
}

if (import.meta.main) Deno.exit(await main());
