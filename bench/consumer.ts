/** @module Consumer bench: the raw COPY ceiling vs the consumer end to end (topic -> table), with RSS and stage times. */
import { createKafka } from "../lib/kafka/client.ts";
import { fetchLag } from "../lib/kafka/lag.ts";
import type { Logger } from "../lib/core/log.ts";
import { migrate } from "../lib/sink/migrate.ts";
import { topicNames } from "../lib/pipeline/producer.ts";
import { STAGES } from "../lib/core/stage_times.ts";
import { freePortRange } from "../tests/_ports.ts";
import {
  freshDatabase,
  spawnConsumer,
} from "../tests/integration/_consumer_fixture.ts";
import {
  clusterCpuS,
  loadAverage,
  machineTicks,
  parentPid,
  sampleTree,
} from "./_proc.ts";
import { deleteTopic, fillTopic, measureCopyCeiling } from "./_fill.ts";

/** Where the bench runs. */
export interface ConsumerBenchOptions {
  brokers: string;
  databaseUrl: string;
  rows: number;
  partitions: number;
  log: Logger;
  /** Progress lines for humans. */
  say: (line: string) => void;
  /** Leave the filled topic and its rows for another system to read (bench:peers). */
  keepTopic?: (topic: string) => void;
}

/** The consumer section's figures. */
export interface ConsumerBenchResult {
  rows: number;
  fill_rows_per_s: number;
  copy_ceiling_rows_per_s: number;
  consumer_rows_per_s: number;
  consumer_rows_per_s_incl_startup: number;
  consumer_startup_ms: number;
  consumer_total_ms: number;
  consumer_cpu_s: number;
  ratio: number;
  peak_rss_mb: number;
  /** Resident set (MB) when 25, 50, 75 and 100 % of the offsets were committed. */
  rss_mb_at: Record<string, number>;
  /** Milliseconds per stage, summed over concurrent batches. */
  stage_ms: Record<string, number>;
  /** PostgreSQL's CPU seconds after the first commit (null: not on this machine). */
  postgres_cpu_s: number | null;
  /** Share of all cores busy after the first commit (every process on the machine). */
  machine_busy_pct: number;
  /** CPU microseconds per row after the first commit: the consumer, PostgreSQL, all the rest. */
  cpu_us_per_row: { consumer: number; postgres: number | null; rest: number };
  /** This run's rate over the machine's busy share: every core busy at its CPU per row (a projection). */
  cpu_bound_rows_per_s: number;
  load_avg: { start: number; end: number };
}

/**
 * Fills a fresh topic with replayed recorded rows, times a COPY of the same rows straight into
 * a fresh wiki_recent_changes (the ceiling), empties the table, then runs `consumer.ts` as a
 * subprocess until every offset is committed, sampling its RSS from /proc and its stage times
 * from /metrics.
 */
export async function runConsumerBench(
  options: ConsumerBenchOptions,
): Promise<ConsumerBenchResult> {
  const load0 = loadAverage();
  const id = crypto.randomUUID().slice(0, 8);
  const topic = `bench.${id}.rc`;
  const kafka = createKafka({
    brokers: options.brokers.split(","),
    clientId: `bench-${id}`,
    log: options.log,
  });
  await using db = await freshDatabase(options.databaseUrl);
  await migrate(db.sql);
  let keep = false;
  try {
    const fillMs = await fillTopic(kafka, topic, options);
    const copyRate = await measureCopyCeiling(db.sql, options);
    // The cluster's postmaster (our backend's parent), when it runs on this machine.
    const [b] = await db.sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const run = await runConsumer(kafka, {
      id,
      topic,
      brokers: options.brokers,
      databaseUrl: db.url,
      partitions: options.partitions,
      postmaster: parentPid(b!.pid),
    });
    const [c] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from wiki_recent_changes`;
    if (c?.n !== options.rows) {
      throw new Error(`Table holds ${c?.n} rows, expected ${options.rows}`);
    }
    keep = options.keepTopic !== undefined;
    options.keepTopic?.(topic);
    return report(run, { fillMs, copyRate, load0 }, options);
  } finally {
    // A bench topic holds rows x ~1.3 KB: repeated runs would fill the broker's disk. The
    // consumer also created its dead-letter topic.
    if (!keep) await deleteTopic(kafka, topic, options.log);
    await deleteTopic(kafka, topicNames(topic).dlq, options.log);
  }
}

type Kafka = ReturnType<typeof createKafka>;
type Admin = ReturnType<Kafka["admin"]>;

/** What the consumer run measured (times from `performance.now()`). */
interface ConsumerRun {
  started: number;
  /** The first commit: when, and how many offsets it covered. */
  first: { at: number; n: number };
  doneAt: number;
  /** Offsets committed in all (transaction markers included). */
  total: number;
  peakKb: number;
  cpuS: number;
  rssAt: Record<string, number>;
  stages: Record<string, number>;
  /** CPU from the first commit to the last (the steady phase consumer_rows_per_s covers). */
  steady: {
    wallS: number;
    consumerS: number;
    postgresS: number | null;
    machine: { busy: number; total: number };
  };
}

/** End to end: a real consumer process, from the pre-filled topic into the table. */
async function runConsumer(
  kafka: Kafka,
  target: {
    id: string;
    topic: string;
    brokers: string;
    databaseUrl: string;
    partitions: number;
    /** PostgreSQL's postmaster pid here (0: not on this machine). */
    postmaster: number;
  },
): Promise<ConsumerRun> {
  const { id, topic } = target;
  const group = `bench-${id}`;
  const port = freePortRange(1);
  const started = performance.now();
  const child = await spawnConsumer({
    KAFKA_BROKERS: target.brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: group,
    KAFKA_CLIENT_ID: `bench-${id}`,
    KAFKA_PARTITIONS: String(target.partitions),
    DATABASE_URL: target.databaseUrl,
    HTTP_PORT: String(port),
  }, ["--idle-exit", "3"]);
  const sampler = sampleTree(child.pid, 200);
  // Progress comes from the group's committed offsets (cheap), not count(*) on a growing table.
  const admin = kafka.admin();
  await admin.connect();
  try {
    const progress = await waitForCommits(admin, {
      group,
      topic,
      started,
      rss: () => sampler.now().rssKb,
      cpu: () => ({
        consumer: sampler.now().cpuS,
        postgres: target.postmaster > 0 ? clusterCpuS(target.postmaster) : null,
        machine: machineTicks(),
      }),
    });
    // The last batch's offset commit is timed just after the broker has it: let it land.
    await new Promise((r) => setTimeout(r, 500));
    const stages = await scrapeStages(port);
    const status = await child.status;
    if (!status.success) {
      throw new Error(`Consumer exited with code ${status.code}`);
    }
    const usage = sampler.stop();
    return {
      started,
      ...progress,
      peakKb: usage.peakKb,
      cpuS: usage.cpuS,
      stages,
      steady: steadyCpu(
        progress.cpuAt,
        (progress.doneAt - progress.first.at) / 1000,
      ),
    };
  } finally {
    sampler.stop();
    await admin.disconnect();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
}

/**
 * Polls the group's offsets until every record is committed (at most 30 minutes), noting the
 * resident set as the committed share passes 25, 50, 75 and 100 %.
 */
async function waitForCommits(
  admin: Admin,
  { group, topic, started, rss, cpu }: {
    group: string;
    topic: string;
    started: number;
    rss: () => number;
    cpu: () => CpuReading;
  },
): Promise<
  Pick<ConsumerRun, "first" | "doneAt" | "total" | "rssAt"> & {
    cpuAt: [CpuReading, CpuReading];
  }
> {
  let first: { at: number; n: number } | undefined;
  let cpuFirst: CpuReading | undefined;
  const rssAt: Record<string, number> = {};
  while (true) {
    const lag = await fetchLag(admin, { groupId: group, topic });
    const pending = Number(lag.reduce((a, p) => a + BigInt(p.lag), 0n));
    const committed = lag.reduce((a, p) => a + Number(p.committed ?? 0), 0);
    const now = performance.now();
    if (committed > 0 && !first) {
      first = { at: now, n: committed };
      cpuFirst = cpu();
    }
    const share = committed / (committed + pending || 1);
    for (const q of [25, 50, 75, 100]) {
      if (share * 100 >= q && !(q in rssAt)) {
        rssAt[q] = Number((rss() / 1024).toFixed(1));
      }
    }
    if (committed > 0 && pending === 0) {
      const cpuAt: [CpuReading, CpuReading] = [cpuFirst!, cpu()];
      return { first: first!, doneAt: now, total: committed, rssAt, cpuAt };
    }
    if (now - started > 1_800_000) {
      throw new Error("Cannot finish the consumer bench within 30 minutes");
    }
    await new Promise((r) =>
      setTimeout(r, pollDelay(first, committed, pending, now))
    );
  }
}

/**
 * How long to wait before the next look at the offsets: 20 ms around the first and the last
 * commit (the ends of the timing), up to half a second in between, a quarter of the time the
 * remaining records should take at the rate so far. Each look is broker work and this process's
 * CPU on the cores the consumer runs on: every 20 ms throughout, it took about 7 % of this
 * 2-core machine (scratch: 1.7-1.8 CPU s per 10 s, broker and bench, against 0.3-0.6 without).
 */
export function pollDelay(
  first: { at: number; n: number } | undefined,
  committed: number,
  pending: number,
  now: number,
): number {
  if (!first || now <= first.at || committed <= first.n) return 20;
  const perMs = (committed - first.n) / (now - first.at);
  return Math.round(Math.min(500, Math.max(20, pending / perMs / 4)));
}

/** The consumer's per-stage milliseconds, read from its /metrics. */
async function scrapeStages(port: number): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const stage of STAGES) {
    const m = new RegExp(
      `wikistream_consumer_stage_seconds_total\\{stage="${stage}"\\} (\\S+)`,
    ).exec(text);
    out[stage] = Math.round(Number(m?.[1] ?? NaN) * 1000);
  }
  return out;
}

/** CPU seconds so far: the consumer's tree, PostgreSQL's, the machine's ticks. */
interface CpuReading {
  consumer: number;
  postgres: number | null;
  machine: { busy: number; total: number };
}

/** What was used between two readings. */
function steadyCpu(
  [a, b]: [CpuReading, CpuReading],
  wallS: number,
): ConsumerRun["steady"] {
  return {
    wallS,
    consumerS: b.consumer - a.consumer,
    postgresS: a.postgres === null || b.postgres === null
      ? null
      : b.postgres - a.postgres,
    machine: {
      busy: b.machine.busy - a.machine.busy,
      total: b.machine.total - a.machine.total,
    },
  };
}

/** Prints the consumer's figures and returns the section's result. */
function report(
  run: ConsumerRun,
  { fillMs, copyRate, load0 }: {
    fillMs: number;
    copyRate: number;
    load0: number;
  },
  options: ConsumerBenchOptions,
): ConsumerBenchResult {
  const { started, first: f, doneAt, total, peakKb } = run;
  const steadyMs = doneAt - f.at;
  // Offsets count transaction markers too; scale the offsets consumed after the first commit.
  const rowsAfterFirst = options.rows * (total - f.n) / total;
  const consumerRate = rowsAfterFirst / (steadyMs / 1000);
  options.say(
    `consumer: ${options.rows} rows; first commit after ${
      fmtMs(f.at - started)
    } (process start, migrations, group join, first batch), then ${
      Math.round(rowsAfterFirst)
    } rows in ${fmtMs(steadyMs)} = ${Math.round(consumerRate)} rows/s`,
  );
  options.say(
    `consumer: peak RSS ${
      (peakKb / 1024).toFixed(1)
    } MB, RSS at 25/50/75/100 %: ${Object.values(run.rssAt).join(" / ")} MB; ${
      run.cpuS.toFixed(1)
    } CPU s; all offsets committed (lag 0)`,
  );
  const cpu = cpuBudget(run.steady, rowsAfterFirst);
  options.say(
    `CPU per row after the first commit: consumer ${cpu.perRow.consumer} us, PostgreSQL ${
      cpu.perRow.postgres ?? "?"
    } us, the rest ${cpu.perRow.rest} us (Kafka, this bench, anything else); machine ${cpu.busyPct} % busy; at this cost with all ${navigator.hardwareConcurrency} cores busy: ${cpu.boundRate} rows/s = ratio ${
      (cpu.boundRate / copyRate).toFixed(2)
    }`,
  );
  options.say(
    `consumer stages (ms, summed over concurrent batches): ${
      STAGES.map((s) => `${s} ${run.stages[s]}`).join(", ")
    }`,
  );
  return {
    rows: options.rows,
    fill_rows_per_s: Math.round(options.rows / (fillMs / 1000)),
    copy_ceiling_rows_per_s: Math.round(copyRate),
    consumer_rows_per_s: Math.round(consumerRate),
    consumer_rows_per_s_incl_startup: Math.round(
      options.rows / ((doneAt - started) / 1000),
    ),
    consumer_startup_ms: Math.round(f.at - started),
    consumer_total_ms: Math.round(doneAt - started),
    consumer_cpu_s: Number(run.cpuS.toFixed(1)),
    ratio: Number((consumerRate / copyRate).toFixed(3)),
    peak_rss_mb: Number((peakKb / 1024).toFixed(1)),
    rss_mb_at: run.rssAt,
    stage_ms: run.stages,
    postgres_cpu_s: run.steady.postgresS === null
      ? null
      : Number(run.steady.postgresS.toFixed(1)),
    machine_busy_pct: cpu.busyPct,
    cpu_us_per_row: cpu.perRow,
    cpu_bound_rows_per_s: cpu.boundRate,
    load_avg: { start: load0, end: loadAverage() },
  };
}

/**
 * CPU microseconds per row from the first commit to the last (the span consumer_rows_per_s
 * covers): the consumer's, PostgreSQL's, and the rest of the machine's busy time (Kafka, this
 * bench, anything else running); and the rate at that cost per row with every core busy (the
 * measured rate over the busy share: fixed costs and other load count as cost per row).
 */
function cpuBudget(steady: ConsumerRun["steady"], rows: number) {
  const cores = navigator.hardwareConcurrency;
  // /proc/stat gives the busy share; its tick count per second is not exact, the wall clock is.
  const share = steady.machine.busy / (steady.machine.total || 1);
  const busyS = share * cores * steady.wallS;
  const us = (s: number) => Math.round((s / rows) * 1e6);
  const consumer = us(steady.consumerS);
  const postgres = steady.postgresS === null ? null : us(steady.postgresS);
  const total = us(busyS);
  return {
    perRow: {
      consumer,
      postgres,
      rest: Math.max(0, total - consumer - (postgres ?? 0)),
    },
    busyPct: Math.round(100 * share),
    boundRate: total > 0 ? Math.round((cores * 1e6) / total) : 0,
  };
}

function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
