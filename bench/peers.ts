/**
 * @module `deno task bench:peers`: the consumer beside the Debezium JDBC sink on Kafka Connect and
 * the original design's Spark Structured Streaming job, on the same Kafka, PostgreSQL and rows.
 */
import { createLogger } from "../lib/core/log.ts";
import { createKafka } from "../lib/kafka/client.ts";
import { migrate } from "../lib/sink/migrate.ts";
import { freePortRange } from "../tests/_ports.ts";
import {
  freshDatabase,
  spawnConsumer,
} from "../tests/integration/_consumer_fixture.ts";
import { fillTopic } from "./_fill.ts";
import { services } from "./main.ts";
import { loadAverage } from "./_proc.ts";
import { type SystemRun, timeSystem } from "./peers/_run.ts";
import { connectValue, spawnDebezium } from "./peers/_debezium.ts";
import { spawnSpark } from "./peers/_spark.ts";

/** What to run: `--rows N` (200 000), `--runs N` (2), `--only a,b` (every system). */
export interface PeersOptions {
  rows: number;
  runs: number;
  only: string[];
}

const SYSTEMS = ["wikistream", "debezium", "debezium_batch2000", "spark"];
const root = new URL("../", import.meta.url).pathname;
const peers = `${root}.cache/peers`;

/** Runs the peers bench; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  const opts = parseArgs(args);
  const enc = new TextEncoder();
  const say = (line: string) => Deno.stdout.writeSync(enc.encode(line + "\n"));
  const { brokers, databaseUrl } = await services();
  await install();
  const log = createLogger({ service: "bench", level: "error" });
  const id = crypto.randomUUID().slice(0, 8);
  const kafka = createKafka({
    brokers: brokers.split(","),
    clientId: `peers-${id}`,
    log,
  });
  const fill = { rows: opts.rows, partitions: 3, log, say };
  say(
    `bench:peers: ${opts.rows} rows, ${opts.runs} runs each, load ${loadAverage()}`,
  );
  const envelopes = `peers.${id}.rc`;
  const flattened = `peers.${id}.rows`;
  await fillTopic(kafka, envelopes, fill);
  if (opts.only.some((s) => s.startsWith("debezium"))) {
    await fillTopic(kafka, flattened, {
      ...fill,
      toValue: connectValue,
      chunk: 300,
    });
  }
  const runs: Record<string, SystemRun[]> = {};
  for (let run = 1; run <= opts.runs; run++) {
    for (const name of opts.only) {
      await using db = await freshDatabase(databaseUrl);
      await migrate(db.sql);
      const dir = `${root}.cache/peers/runs/${id}-${name}-${run}`;
      Deno.mkdirSync(dir, { recursive: true });
      const spawn = spawner(name, {
        brokers,
        envelopes,
        flattened,
        url: db.url,
        dir,
        run,
      });
      const r = await timeSystem(name, spawn, {
        sql: db.sql,
        rows: opts.rows,
        log: dir,
      });
      say(`${name} run ${run}: ${JSON.stringify(r)}`);
      (runs[name] ??= []).push(r);
    }
  }
  say(JSON.stringify(summary(opts, runs)));
  return 0;
}

/** How each system is started against the run's fresh database. */
function spawner(
  name: string,
  t: {
    brokers: string;
    envelopes: string;
    flattened: string;
    url: string;
    dir: string;
    run: number;
  },
): () => Deno.ChildProcess | Promise<Deno.ChildProcess> {
  const group = `peers-${crypto.randomUUID().slice(0, 8)}`;
  switch (name) {
    case "wikistream":
      return () =>
        spawnConsumer({
          KAFKA_BROKERS: t.brokers,
          KAFKA_TOPIC: t.envelopes,
          KAFKA_GROUP_ID: group,
          KAFKA_CLIENT_ID: group,
          DATABASE_URL: t.url,
        });
    case "debezium":
    case "debezium_batch2000":
      return () =>
        spawnDebezium({
          brokers: t.brokers,
          topic: t.flattened,
          databaseUrl: t.url,
          batchSize: name === "debezium" ? 500 : 2000,
          dir: t.dir,
          restPort: freePortRange(1),
          peers,
        });
    case "spark":
      return () =>
        spawnSpark({
          brokers: t.brokers,
          topic: t.envelopes,
          databaseUrl: t.url,
          mode: "append",
          maxOffsetsPerTrigger: 20_000,
          dir: t.dir,
          peers,
        });
  }
  throw new RangeError(`Unknown system: ${name}`);
}

/** Medians per system, and wikistream's lead over each peer (rows/s and CPU seconds). */
function summary(
  opts: PeersOptions,
  runs: Record<string, SystemRun[]>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { rows: opts.rows, runs: opts.runs };
  const key = (name: string) =>
    name === "debezium_batch2000" ? "debezium_batch2000" : name;
  for (const [name, rs] of Object.entries(runs)) {
    const k = key(name);
    out[`${k}_rows_per_s`] = median(rs.map((r) => r.rows_per_s));
    out[`${k}_rows_per_s_incl_startup`] = median(
      rs.map((r) => r.rows_per_s_incl_startup),
    );
    out[`${k}_cpu_s`] = median(rs.map((r) => r.cpu_s));
    out[`${k}_peak_rss_mb`] = median(rs.map((r) => r.peak_rss_mb));
  }
  const w = runs.wikistream;
  for (const name of Object.keys(runs).filter((n) => n !== "wikistream")) {
    if (!w) break;
    const k = key(name);
    out[`wikistream_vs_${k}_rows_per_s`] = round2(
      (out.wikistream_rows_per_s as number) /
        (out[`${k}_rows_per_s`] as number),
    );
    out[`wikistream_vs_${k}_cpu_s`] = round2(
      (out.wikistream_cpu_s as number) / (out[`${k}_cpu_s`] as number),
    );
  }
  out.debezium_reads =
    "pre-decoded flattened rows with a JSON schema (no MediaWiki parsing)";
  out.spark_mode = "append (plain INSERT)";
  out.load_avg_end = loadAverage();
  return out;
}

/** Fetches the peers' jars and pyspark once (bench/peers/install.sh). */
async function install(): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [`${root}bench/peers/install.sh`],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error("Cannot install the peers (bench/peers/install.sh failed)");
  }
}

function parseArgs(args: string[]): PeersOptions {
  const o: PeersOptions = { rows: 200_000, runs: 2, only: SYSTEMS };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split("=", 2) as [
      string,
      string | undefined,
    ];
    const value = inline ?? args[++i] ?? "";
    if (flag === "--rows") o.rows = positive(flag, value);
    else if (flag === "--runs") o.runs = positive(flag, value);
    else if (flag === "--only") o.only = value.split(",").filter((s) => s);
    else throw new RangeError(`Unknown bench:peers option: ${flag}`);
  }
  for (const s of o.only) {
    if (!SYSTEMS.includes(s)) {
      throw new RangeError(
        `Unknown system "${s}" (expected one of ${SYSTEMS.join(", ")})`,
      );
    }
  }
  return o;
}

function positive(flag: string, raw: string): number {
  const n = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(`${flag} must be a positive integer, got "${raw}"`);
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) * 5) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.main) Deno.exit(await main());
