/** @module `deno task produce`: polls the configured wikis and publishes every change to Kafka. */
import { boot } from "./lib/core/cli.ts";
import { serve } from "./lib/http/serve.ts";
import { createApp } from "./lib/http/app.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { startProducer } from "./lib/pipeline/producer.ts";
import { renderMetrics } from "./lib/http/metrics.ts";

/** Runs the producer; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  const booted = boot("producer", args, ["since", "until"]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  let producer;
  try {
    producer = await startProducer(config, {
      log,
      signal: life.signal,
      since: flags.since,
      until: flags.until,
    });
  } catch (err) {
    log.error("cannot start producer", { err });
    return 1;
  }
  const app = createApp({
    service: "producer",
    health: producer.health,
    ready: producer.ready,
    metrics: () => renderMetrics({ producer: producer.stats }),
  });
  const server = serve(app, {
    hostname: config.HTTP_HOST,
    port: config.PRODUCER_HTTP_PORT,
    signal: life.signal,
    log,
  });
  let code = 0;
  try {
    await producer.done;
  } catch (err) {
    log.error("producer failed", { err });
    code = 1;
  }
  life.stop(flags.until ? "backfill complete" : "stop");
  await producer.close();
  await server.finished;
  log.info("stopped", { code });
  return code;
}

if (import.meta.main) Deno.exit(await main());
