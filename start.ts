/**
 * @module `deno task start`: the one-command local run. Starts local Kafka and PostgreSQL when
 * KAFKA_BROKERS / DATABASE_URL are not given, migrates, then runs producer and consumer together
 * (one HTTP server) until Ctrl-C.
 */
import { boot, type Flags } from "./lib/core/cli.ts";
import type { Config } from "./lib/core/config.ts";
import { createLifecycle, type Lifecycle } from "./lib/core/lifecycle.ts";
import type { Logger } from "./lib/core/log.ts";
import { serve } from "./lib/http/serve.ts";
import {
  type ConsumerService,
  startConsumer,
} from "./lib/pipeline/consumer.ts";
import { createApp } from "./lib/http/app.ts";
import { createMetrics, type Metrics } from "./lib/http/metrics.ts";
import { createDashboardData } from "./lib/http/dashboard_data.ts";
import {
  type ProducerService,
  startProducer,
} from "./lib/pipeline/producer.ts";

/** Starts the local services through scripts/services.sh and returns the settings it printed. */
async function localServices(): Promise<Record<string, string>> {
  const script = new URL("./scripts/services.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [script, "start"],
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
  const env = await withLocalServices(Deno.env.toObject());
  const booted = boot("wikistream", args, ["since", "until"], env);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const metrics = createMetrics();
  const started = await startPipeline(config, flags, { log, life, metrics });
  if (!started) return 1;
  const { producer: p, consumer: c } = started;
  const server = serve(createPipelineApp(p, c, metrics), {
    hostname: config.HTTP_HOST,
    port: config.HTTP_PORT,
    signal: life.signal,
    log,
  });
  log.info("pipeline running; press Ctrl-C to stop", { wikis: config.WIKIS });
  const code = await untilDone(p, c, log);
  life.stop("stop");
  await p.close();
  await c.close();
  await server.finished;
  log.info("stopped", {
    code,
    published: [...p.stats.values()].reduce((n, s) => n + s.published, 0),
    written: c.stats.written,
  });
  return code;
}

/** Fills in the local services' settings when KAFKA_BROKERS or DATABASE_URL is not given. */
async function withLocalServices(
  env: Record<string, string>,
): Promise<Record<string, string>> {
  if (!env.KAFKA_BROKERS || !env.DATABASE_URL) {
    const local = await localServices();
    for (const [k, v] of Object.entries(local)) env[k] ||= v;
  }
  return env;
}

/** What {@linkcode startPipeline} needs besides the config. */
interface PipelineDeps {
  log: Logger;
  life: Lifecycle;
  metrics: Metrics;
}

/** Starts the consumer, then the producer; on failure logs it, stops and returns undefined. */
async function startPipeline(
  config: Config,
  flags: Flags,
  { log, life, metrics }: PipelineDeps,
): Promise<
  { consumer: ConsumerService; producer: ProducerService } | undefined
> {
  let consumer, producer;
  try {
    consumer = await startConsumer(config, {
      log,
      signal: life.signal,
      stallMs: config.HEALTH_STALL_SECONDS * 1000,
      onBatch: (n, ms) => metrics.observeBatch(n, ms / 1000),
    });
    producer = await startProducer(config, {
      log,
      signal: life.signal,
      since: flags.since,
      until: flags.until,
    });
  } catch (err) {
    log.error("cannot start", { err });
    life.stop("startup failed");
    await consumer?.close().catch(() => {});
    return undefined;
  }
  return { consumer, producer };
}

/** One app over both halves: healthy and ready only when both are. */
function createPipelineApp(
  p: ProducerService,
  c: ConsumerService,
  metrics: Metrics,
) {
  return createApp({
    service: "wikistream",
    health: () => {
      const hp = p.health(), hc = c.health();
      return hp.ok && hc.ok ? { ok: true } : {
        ok: false,
        reason: [hp.reason, hc.reason].filter(Boolean).join("; "),
      };
    },
    ready: async () => {
      const [rp, rc] = await Promise.all([p.ready(), c.ready()]);
      return rp.ok && rc.ok ? { ok: true } : {
        ok: false,
        reason: [rp.reason, rc.reason].filter(Boolean).join("; "),
      };
    },
    lag: c.lag,
    metrics: () =>
      metrics.render({
        producer: p.stats,
        consumer: c.stats,
        housekeeping: c.housekeeping,
        lag: c.lag,
      }),
    dashboard: createDashboardData(c.sql),
  });
}

/** Waits for both halves; returns the exit code (1 when either failed). */
async function untilDone(
  p: ProducerService,
  c: ConsumerService,
  log: Logger,
): Promise<number> {
  try {
    // With --until the producer finishes first; the consumer goes on until Ctrl-C.
    await Promise.all([p.done, c.done]);
    return 0;
  } catch (err) {
    log.error("pipeline failed", { err });
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
