/** @module Consumer bench: the raw COPY ceiling vs the consumer end to end (topic -> table), with peak RSS. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decodeValue } from "../lib/sink/decode.ts";
import { createKafka, fetchLag } from "../lib/kafka/client.ts";
import type { Logger } from "../lib/core/log.ts";
import { migrate } from "../lib/sink/migrate.ts";
import { COLUMNS, copyChunks, type SinkRow } from "../lib/sink/sink.ts";
import {
  freshDatabase,
  publishRecords,
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
  const { say, log } = options;
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
  let t = performance.now();
  await publishRecords(kafka, topic, records, {
    log,
    partitions: options.partitions,
    chunk: 2000,
  });
  const fillMs = performance.now() - t;
  say(
    `filled ${topic}: ${records.length} rows in ${
      fmtMs(fillMs)
    } (${options.partitions} partitions, transactional)`,
  );

  // The ceiling: the same rows, decoded beforehand, in one COPY straight into the table.
  const enc = new TextEncoder();
  const rows: SinkRow[] = records.map((r, i) => ({
    ...decodeValue(enc.encode(r.value)),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
  t = performance.now();
  await db.sql.begin(async (tx) => {
    const writable = await tx.unsafe(
      `copy wiki_recent_changes (${COLUMNS.join(", ")}) from stdin`,
    ).writable();
    await pipeline(Readable.from(copyChunks(rows)), writable);
  });
  const copyMs = performance.now() - t;
  rows.length = 0;
  const copyRate = options.rows / (copyMs / 1000);
  say(
    `COPY ceiling: ${options.rows} rows in ${fmtMs(copyMs)} = ${
      Math.round(copyRate)
    } rows/s (one COPY into wiki_recent_changes, indexes included)`,
  );
  await db.sql`truncate wiki_recent_changes, wiki_activity_minute`;
  await db.sql`vacuum analyze wiki_recent_changes`;

  // End to end: a real consumer process, from a pre-filled topic into the table.
  const group = `bench-${id}`;
  const started = performance.now();
  const child = spawnConsumer({
    KAFKA_BROKERS: options.brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: group,
    KAFKA_CLIENT_ID: `bench-${id}`,
    KAFKA_PARTITIONS: String(options.partitions),
    DATABASE_URL: db.url,
  }, ["--idle-exit", "2"]);
  let peakKb = 0;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, readPeakKb(child.pid));
  }, 50);
  // Progress comes from the group's committed offsets (cheap), not count(*) on a growing table.
  const admin = kafka.admin();
  await admin.connect();
  let first: { at: number; n: number } | undefined;
  let doneAt = 0;
  let total = 0;
  try {
    while (true) {
      const lag = await fetchLag(admin, { groupId: group, topic });
      const pending = Number(lag.reduce((a, p) => a + BigInt(p.lag), 0n));
      const committed = lag.reduce((a, p) => a + Number(p.committed ?? 0), 0);
      const now = performance.now();
      if (committed > 0 && !first) first = { at: now, n: committed };
      if (committed > 0 && pending === 0) {
        doneAt = now;
        total = committed;
        break;
      }
      if (now - started > 600_000) {
        throw new Error("Cannot finish the consumer bench within 10 minutes");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const status = await child.status;
    if (!status.success) {
      throw new Error(`Consumer exited with code ${status.code}`);
    }
  } finally {
    clearInterval(sampler);
    await admin.disconnect();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
  const [c] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from wiki_recent_changes`;
  if (c?.n !== options.rows) {
    throw new Error(`Table holds ${c?.n} rows, expected ${options.rows}`);
  }

  const f = first!;
  const steadyMs = doneAt - f.at;
  // Offsets count transaction markers too; scale the offsets consumed after the first commit.
  const rowsAfterFirst = options.rows * (total - f.n) / total;
  const consumerRate = rowsAfterFirst / (steadyMs / 1000);
  say(
    `consumer: ${options.rows} rows; first commit after ${
      fmtMs(f.at - started)
    } (process start, migrations, group join, first batch), then ${
      Math.round(rowsAfterFirst)
    } rows in ${fmtMs(steadyMs)} = ${Math.round(consumerRate)} rows/s`,
  );
  say(
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
