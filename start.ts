/**
 * @module `deno task start`: the one-command local run. Validates the configuration and flags,
 * starts local Kafka and PostgreSQL when KAFKA_BROKERS / DATABASE_URL are not given, then runs
 * producer and consumer together (one HTTP server) until Ctrl-C, each waiting out outages.
 */
import { boot, type Flags, helpRequested, printUsage } from "./lib/core/cli.ts";
import { type Config, configEnv } from "./lib/core/config.ts";
import { ConfigError } from "./lib/core/errors.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import type { Logger } from "./lib/core/log.ts";
import { serve } from "./lib/http/serve.ts";
import { createApp } from "./lib/http/app.ts";
import { createMetrics, type Metrics } from "./lib/http/metrics.ts";
import {
  allOk,
  supervisedHealth,
  supervisedReady,
  supervisionSamples,
} from "./lib/pipeline/supervised.ts";
import { currentDashboard, currentLag } from "./lib/pipeline/_current.ts";
import {
  superviseConsumer,
  superviseProducer,
} from "./lib/pipeline/supervise.ts";

/**
 * Starts the local services through scripts/services.sh and returns the settings it printed. The
 * script is run itself (not through bash), so `--allow-run` names that one program.
 */
async function localServices(): Promise<Record<string, string>> {
  const script = new URL("./scripts/services.sh", import.meta.url).pathname;
  const out = await new Deno.Command(script, {
    args: ["start"],
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error(`Cannot start local services: exit code ${out.code}`);
  }
  const env: Record<string, string> = {};
  for (
    const m of new TextDecoder().decode(out.stdout).matchAll(
      /^export (\w+)=(.*)$/gm,
    )
  ) env[m[1]!] = m[2]!;
  return env;
}

/** Runs the whole pipeline; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  // Before the local services start: help must not start Kafka and PostgreSQL.
  if (helpRequested(args)) return printUsage("start");
  // Only the schema's variables: the task grants --allow-env to those names alone.
  const env = configEnv();
  // Validate before starting anything: a bad value must not leave services running.
  const checked = boot("wikistream", args, ["since", "until"], env);
  if ("exitCode" in checked) return checked.exitCode;
  const booted = boot("wikistream", args, ["since", "until"], {
    ...env,
    ...await localServicesIfNeeded(env),
  });
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const metrics = createMetrics();
  const pipeline = supervisePipeline(config, flags, { log, life, metrics });
  let server;
  try {
    server = serve(pipeline.app, {
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
  log.info("pipeline running; press Ctrl-C to stop", { wikis: config.WIKIS });
  let code = 0;
  try {
    // With --until the producer finishes first; the consumer goes on until Ctrl-C.
    await Promise.all([pipeline.producer.run(), pipeline.consumer.run()]);
  } catch (err) {
    log.error("pipeline failed", { err });
    code = 1;
  }
  life.stop("stop");
  await pipeline.producer.current()?.close();
  await pipeline.consumer.current()?.close();
  await server.finished;
  log.info("stopped", {
    code,
    published: [...pipeline.producerStats.values()].reduce(
      (n, s) => n + s.published,
      0,
    ),
    written: pipeline.consumerStats.written,
  });
  return code;
}

/** The local services' settings when KAFKA_BROKERS or DATABASE_URL is not given. */
async function localServicesIfNeeded(
  env: Record<string, string | undefined>,
): Promise<Record<string, string>> {
  if (env.KAFKA_BROKERS && env.DATABASE_URL) return {};
  const local = await localServices();
  return Object.fromEntries(
    Object.entries(local).filter(([k]) => !env[k]),
  );
}

/** What {@linkcode supervisePipeline} needs besides the config. */
interface PipelineDeps {
  log: Logger;
  life: { signal: AbortSignal };
  metrics: Metrics;
}

/** Both halves under supervisors, and one app over them: ready only when both are. */
function supervisePipeline(
  config: Config,
  flags: Flags,
  { log, life, metrics }: PipelineDeps,
) {
  const deps = { log, signal: life.signal };
  const {
    sup: consumer,
    stats: consumerStats,
    housekeepingStats,
  } = superviseConsumer(config, deps, { metrics });
  const { sup: producer, stats: producerStats } = superviseProducer(
    config,
    deps,
    flags,
  );
  const lag = currentLag(consumer);
  const app = createApp({
    service: "wikistream",
    health: () =>
      allOk([supervisedHealth(producer), supervisedHealth(consumer)]),
    ready: async () =>
      allOk(
        await Promise.all([
          supervisedReady(producer),
          supervisedReady(consumer),
        ]),
      ),
    sources: () => producer.current()?.sources() ?? [],
    lag,
    metrics: () =>
      metrics.render({
        producer: producerStats,
        consumer: consumerStats,
        housekeeping: housekeepingStats,
        lag,
        supervision: supervisionSamples({ producer, consumer }),
      }),
    dashboard: currentDashboard(consumer),
    authToken: config.HTTP_AUTH_TOKEN,
  });
  return { app, producer, consumer, producerStats, consumerStats };
}

if (import.meta.main) Deno.exit(await main());
