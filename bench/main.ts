/** @module `deno task bench`: runs each bench section, prints a summary, then one JSON line last. */
import { createLogger } from "../lib/core/log.ts";
import { runConsumerBench } from "./consumer.ts";
import { runProducerBench } from "./producer.ts";
import { loadAverage } from "./_proc.ts";

const USAGE = `Usage: ./wikistream bench

Runs the consumer and producer benchmarks on the local Kafka and PostgreSQL (started through
scripts/services.sh), prints a summary, then one JSON line. See docs/benchmarks.md.

Flags:
  -h, --help  Print this help and exit

Environment:
  BENCH_ROWS=150000
      Rows per benchmark run
`;

/** Runs the bench; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  const enc = new TextEncoder();
  const say = (line: string) => Deno.stdout.writeSync(enc.encode(line + "\n"));
  if (args.includes("--help") || args.includes("-h")) {
    Deno.stdout.writeSync(enc.encode(USAGE));
    return 0;
  }
  const { brokers, databaseUrl } = await services();
  const rows = rowsOption(Deno.args, Deno.env.get("BENCH_ROWS"));
  const log = createLogger({ service: "bench", level: "warn" });
  say(
    `wikistream bench: ${rows} rows, ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
  );
  // Sections add their figures here; another section (e.g. the producer) goes next to this one.
  const consumer = await runConsumerBench({
    brokers,
    databaseUrl,
    rows,
    partitions: 3,
    log,
    say,
  });
  say(
    `ratio consumer / COPY ceiling: ${consumer.ratio} (target >= 0.7); peak RSS ${consumer.peak_rss_mb} MB (target <= 160)`,
  );
  const producer = await runProducerBench({ brokers, log, say });
  say(JSON.stringify({
    rows,
    consumer_rows_per_s: consumer.consumer_rows_per_s,
    copy_ceiling_rows_per_s: consumer.copy_ceiling_rows_per_s,
    ratio: consumer.ratio,
    peak_rss_mb: consumer.peak_rss_mb,
    rss_mb_at: consumer.rss_mb_at,
    consumer_cpu_s: consumer.consumer_cpu_s,
    consumer_rows_per_s_incl_startup: consumer.consumer_rows_per_s_incl_startup,
    consumer_startup_ms: consumer.consumer_startup_ms,
    consumer_total_ms: consumer.consumer_total_ms,
    stage_ms: consumer.stage_ms,
    postgres_cpu_s: consumer.postgres_cpu_s,
    machine_busy_pct: consumer.machine_busy_pct,
    cpu_us_per_row: consumer.cpu_us_per_row,
    cpu_bound_rows_per_s: consumer.cpu_bound_rows_per_s,
    fill_rows_per_s: consumer.fill_rows_per_s,
    producer_page_ms_median: producer.page_ms_median,
    producer_page_ms_p95: producer.page_ms_p95,
    producer_parse_validate_ms_median: producer.parse_validate_ms_median,
    producer_publish_ms_median: producer.publish_ms_median,
    load_avg: { ...consumer.load_avg, end: loadAverage() },
  }));
  return 0;
}

/** `--rows N` (or `--rows=N`), else BENCH_ROWS, else 150 000; a positive integer. */
export function rowsOption(args: string[], env?: string): number {
  let raw = env ?? "150000";
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--rows") raw = args[++i] ?? "";
    else if (a.startsWith("--rows=")) raw = a.slice("--rows=".length);
    else throw new RangeError(`Unknown bench option: ${a} (expected --rows N)`);
  }
  const n = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(
      `Cannot run the bench: --rows must be a positive integer, got "${raw}"`,
    );
  }
  return n;
}

/** KAFKA_BROKERS and DATABASE_URL from the environment, or from the local services (started). */
export async function services(): Promise<
  { brokers: string; databaseUrl: string }
> {
  let brokers = Deno.env.get("KAFKA_BROKERS");
  let databaseUrl = Deno.env.get("DATABASE_URL");
  if (!brokers || !databaseUrl) {
    const out = await new Deno.Command("bash", {
      args: ["scripts/services.sh", "start"],
      cwd: new URL("../", import.meta.url),
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("Cannot start the local services");
    const text = new TextDecoder().decode(out.stdout);
    brokers ??= /KAFKA_BROKERS=(\S+)/.exec(text)?.[1];
    databaseUrl ??= /DATABASE_URL=(\S+)/.exec(text)?.[1];
  }
  if (!brokers || !databaseUrl) {
    throw new Error("Cannot find KAFKA_BROKERS and DATABASE_URL");
  }
  return { brokers, databaseUrl };
}

if (import.meta.main) Deno.exit(await main());
