/** @module Consumer bench: the raw COPY ceiling vs the consumer end to end (topic -> table), with peak RSS. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decodeValue } from "../lib/sink/decode.ts";
import { createKafka } from "../lib/kafka/client.ts";
import { fetchLag } from "../lib/kafka/lag.ts";
import type { Logger } from "../lib/core/log.ts";
import { migrate } from "../lib/sink/migrate.ts";
import { COLUMNS, copyChunks } from "../lib/sink/copy.ts";
import type { SinkRow } from "../lib/sink/sink.ts";
import type { Sql } from "../lib/sink/db.ts";
import {
  freshDatabase,
  publishRecords,
  type ReplayedRecord,
  replayedRecords,
  spawnConsumer,
} from "../tests/integration/_consumer_fixture.ts";

/** Where the bench runs. */
export interface ConsumerBenchOptions {
  brokers: string;
  databaseUrl: string;
  rows: number;
  partitions: number;
  log: Logger;
  /** Progress lines for humans. */
  say: (line: string) => void;
}

/** The consumer section's figures. */
export interface ConsumerBenchResult {
  rows: number;
  fill_rows_per_s: number;
  copy_ceiling_rows_per_s: number;
  consumer_rows_per_s: number;
  consumer_startup_ms: number;
  consumer_total_ms: number;
  ratio: number;
  peak_rss_mb: number;
}

/**
 * Fills a fresh topic with replayed recorded rows, times one COPY of the same rows straight into
 * a fresh wiki_recent_changes (the ceiling), empties the table, then runs `consumer.ts` as a
 * subprocess until the table holds every row, sampling its RSS from /proc.
 */
export async function runConsumerBench(
  options: ConsumerBenchOptions,
): Promise<ConsumerBenchResult> {
  const { log } = options;
  const id = crypto.randomUUID().slice(0, 8);
  const topic = `bench.${id}.rc`;
  const kafka = createKafka({
    brokers: options.brokers.split(","),
    clientId: `bench-${id}`,
    log,
  });
  await using db = await freshDatabase(options.databaseUrl);
  await migrate(db.sql);

  const records = replayedRecords(options.rows);
  const fillMs = await fillTopic(kafka, topic, records, options);
  const copyRate = await measureCopyCeiling(db.sql, records, options);
  const run = await runConsumer(kafka, {
    id,
    topic,
    brokers: options.brokers,
    databaseUrl: db.url,
    partitions: options.partitions,
  });
  const [c] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from wiki_recent_changes`;
  if (c?.n !== options.rows) {
    throw new Error(`Table holds ${c?.n} rows, expected ${options.rows}`);
  }
  return report(run, { fillMs, copyRate }, options);
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
}

/** Publishes the records to a fresh topic; returns the milliseconds it took. */
async function fillTopic(
  kafka: Kafka,
  topic: string,
  records: ReplayedRecord[],
  options: ConsumerBenchOptions,
): Promise<number> {
  const t = performance.now();
  await publishRecords(kafka, topic, records, {
    log: options.log,
    partitions: options.partitions,
    chunk: 2000,
  });
  const fillMs = performance.now() - t;
  options.say(
    `filled ${topic}: ${records.length} rows in ${
      fmtMs(fillMs)
    } (${options.partitions} partitions, transactional)`,
  );
  return fillMs;
}

/**
 * The ceiling: the same rows, decoded beforehand, in one COPY straight into the table; then
 * empties the table again. Returns rows per second.
 */
async function measureCopyCeiling(
  sql: Sql,
  records: ReplayedRecord[],
  options: ConsumerBenchOptions,
): Promise<number> {
  const enc = new TextEncoder();
  const rows: SinkRow[] = records.map((r, i) => ({
    ...decodeValue(enc.encode(r.value)),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
  const t = performance.now();
  await sql.begin(async (tx) => {
    const writable = await tx.unsafe(
      `copy wiki_recent_changes (${COLUMNS.join(", ")}) from stdin`,
    ).writable();
    await pipeline(Readable.from(copyChunks(rows)), writable);
  });
  const copyMs = performance.now() - t;
  rows.length = 0;
  const copyRate = options.rows / (copyMs / 1000);
  options.say(
    `COPY ceiling: ${options.rows} rows in ${fmtMs(copyMs)} = ${
      Math.round(copyRate)
    } rows/s (one COPY into wiki_recent_changes, indexes included)`,
  );
  await sql`truncate wiki_recent_changes, wiki_activity_minute`;
  await sql`vacuum analyze wiki_recent_changes`;
  return copyRate;
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
  },
): Promise<ConsumerRun> {
  const { id, topic } = target;
  const group = `bench-${id}`;
  const started = performance.now();
  const child = await spawnConsumer({
    KAFKA_BROKERS: target.brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: group,
    KAFKA_CLIENT_ID: `bench-${id}`,
    KAFKA_PARTITIONS: String(target.partitions),
    DATABASE_URL: target.databaseUrl,
  }, ["--idle-exit", "2"]);
  let peakKb = 0;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, readPeakKb(child.pid));
  }, 50);
  // Progress comes from the group's committed offsets (cheap), not count(*) on a growing table.
  const admin = kafka.admin();
  await admin.connect();
  try {
    const progress = await waitForCommits(admin, { group, topic, started });
    const status = await child.status;
    if (!status.success) {
      throw new Error(`Consumer exited with code ${status.code}`);
    }
    return { started, ...progress, peakKb };
  } finally {
    clearInterval(sampler);
    await admin.disconnect();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
}

/** Polls the group's offsets until every record is committed (at most 10 minutes). */
async function waitForCommits(
  admin: Admin,
  { group, topic, started }: { group: string; topic: string; started: number },
): Promise<Pick<ConsumerRun, "first" | "doneAt" | "total">> {
  let first: { at: number; n: number } | undefined;
  while (true) {
    const lag = await fetchLag(admin, { groupId: group, topic });
    const pending = Number(lag.reduce((a, p) => a + BigInt(p.lag), 0n));
    const committed = lag.reduce((a, p) => a + Number(p.committed ?? 0), 0);
    const now = performance.now();
    if (committed > 0 && !first) first = { at: now, n: committed };
    if (committed > 0 && pending === 0) {
      return { first: first!, doneAt: now, total: committed };
    }
    if (now - started > 600_000) {
      throw new Error("Cannot finish the consumer bench within 10 minutes");
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Prints the consumer's figures and returns the section's result. */
function report(
  run: ConsumerRun,
  { fillMs, copyRate }: { fillMs: number; copyRate: number },
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
    } MB; all offsets committed (lag 0)`,
  );
  return {
    rows: options.rows,
    fill_rows_per_s: Math.round(options.rows / (fillMs / 1000)),
    copy_ceiling_rows_per_s: Math.round(copyRate),
    consumer_rows_per_s: Math.round(consumerRate),
    consumer_startup_ms: Math.round(f.at - started),
    consumer_total_ms: Math.round(doneAt - started),
    ratio: Number((consumerRate / copyRate).toFixed(3)),
    peak_rss_mb: Number((peakKb / 1024).toFixed(1)),
  };
}

/** VmHWM (peak resident set) of a live process in KiB, or 0 once it is gone. */
function readPeakKb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
