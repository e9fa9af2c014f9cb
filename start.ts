/**
 * @module `deno task start`: the one-command local run. Starts local Kafka and PostgreSQL when
 * KAFKA_BROKERS / DATABASE_URL are not given, migrates, then runs producer and consumer together
 * (one HTTP server) until Ctrl-C.
 */
import { boot, serve } from "./lib/core/cli.ts";
import { startConsumer } from "./lib/pipeline/consumer.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { createMetrics } from "./lib/http/metrics.ts";
import { createDashboardData } from "./lib/http/dashboard_data.ts";
import { startProducer } from "./lib/pipeline/producer.ts";

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
  const env = Deno.env.toObject();
  if (!env.KAFKA_BROKERS || !env.DATABASE_URL) {
    const local = await localServices();
    for (const [k, v] of Object.entries(local)) env[k] ||= v;
  }
  const booted = boot("wikistream", args, ["since", "until"], env);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  const metrics = createMetrics();
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
    return 1;
  }
  const p = producer, c = consumer;
  const app = createApp({
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
      metrics.render({ producer: p.stats, consumer: c.stats, lag: c.lag }),
    dashboard: createDashboardData(c.sql),
  });
  const server = serve(app, {
    hostname: config.HTTP_HOST,
    port: config.HTTP_PORT,
    signal: life.signal,
    log,
  });
  log.info("pipeline running; press Ctrl-C to stop", { wikis: config.WIKIS });
  let code = 0;
  try {
    // With --until the producer finishes first; the consumer goes on until Ctrl-C.
    await Promise.all([p.done, c.done]);
  } catch (err) {
    log.error("pipeline failed", { err });
    code = 1;
  }
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

if (import.meta.main) Deno.exit(await main());
