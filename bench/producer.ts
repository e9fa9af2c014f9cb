/**
 * @module Producer bench: time to parse, validate and publish one 500-row page (the recorded
 * lvwiki rows, replayed five times with shifted rcids), one Kafka transaction per page.
 */
import { createKafka } from "../lib/kafka/client.ts";
import { deleteTopic } from "./_fill.ts";
import { createTransactionalPublisher } from "../lib/kafka/publisher.ts";
import { ensureTopics } from "../lib/kafka/topics.ts";
import { buildPage } from "../lib/source/poller.ts";
import { Cursor } from "../lib/source/cursor.ts";
import type { Logger } from "../lib/core/log.ts";
import {
  loadRecordedWikis,
  type RecordedWiki,
} from "../tests/fakes/fake_mediawiki.ts";

/** Options for {@linkcode runProducerBench}. */
export interface ProducerBenchOptions {
  brokers: string;
  log: Logger;
  say: (line: string) => void;
  pages?: number;
}

/** Figures of the producer section (milliseconds per 500-row page). */
export interface ProducerBenchResult {
  page_rows: number;
  pages: number;
  page_ms_median: number;
  page_ms_p95: number;
  parse_validate_ms_median: number;
  publish_ms_median: number;
}

/** Runs the section against a real broker; returns the figures. */
export async function runProducerBench(
  options: ProducerBenchOptions,
): Promise<ProducerBenchResult> {
  const pages = options.pages ?? 60;
  const id = crypto.randomUUID().slice(0, 8);
  const topics = {
    events: `bench.${id}.rc`,
    checkpoints: `bench.${id}.rc.checkpoints`,
    rejects: `bench.${id}.rc.rejects`,
  };
  const publisher = await connectPublisher(id, topics, options);
  const lv = loadRecordedWikis().find((w) => w.host === "lv.wikipedia.org")!;
  const bodies = pageBodies(lv, pages + 5);
  let timings: PageTimings;
  try {
    timings = await timePages(publisher, bodies, { lv, topics });
  } finally {
    await publisher.disconnect();
    const kafka = createKafka({
      brokers: options.brokers.split(","),
      clientId: `bench-${id}`,
      log: options.log,
    });
    for (const t of Object.values(topics)) {
      await deleteTopic(kafka, t, options.log);
    }
  }
  const result = {
    page_rows: 500,
    pages,
    page_ms_median: round(quantile(timings.total, 0.5)),
    page_ms_p95: round(quantile(timings.total, 0.95)),
    parse_validate_ms_median: round(quantile(timings.prep, 0.5)),
    publish_ms_median: round(quantile(timings.pub, 0.5)),
  };
  options.say(
    `producer: 500-row page parse+validate+publish median ${result.page_ms_median} ms, p95 ${result.page_ms_p95} ms ` +
      `(parse+validate ${result.parse_validate_ms_median} ms, transaction ${result.publish_ms_median} ms; target <= 20 ms)`,
  );
  return result;
}

/** The bench's own topics. */
interface Topics {
  events: string;
  checkpoints: string;
  rejects: string;
}
type Publisher = Awaited<ReturnType<typeof createTransactionalPublisher>>;

/** Milliseconds per measured page: in all, parse+validate, and the publish transaction. */
interface PageTimings {
  total: number[];
  prep: number[];
  pub: number[];
}

/** Creates the bench's topics and connects a transactional publisher to them. */
async function connectPublisher(
  id: string,
  topics: Topics,
  options: ProducerBenchOptions,
): Promise<Publisher> {
  const kafka = createKafka({
    brokers: options.brokers.split(","),
    clientId: `bench-${id}`,
    log: options.log,
  });
  await ensureTopics(kafka, [
    { topic: topics.events, partitions: 3 },
    {
      topic: topics.checkpoints,
      partitions: 1,
      config: { "cleanup.policy": "compact" },
    },
    { topic: topics.rejects, partitions: 1 },
  ]);
  return await createTransactionalPublisher(kafka, {
    transactionalId: `bench-${id}`,
    log: options.log,
  });
}

/** The API answer a page would be: 500 recorded rows, rcids shifted so every page is new. */
function pageBodies(lv: RecordedWiki, count: number): string[] {
  return Array.from({ length: count }, (_, p) =>
    JSON.stringify({
      batchcomplete: true,
      query: {
        recentchanges: Array.from({ length: 5 }, (_, k) =>
          lv.rows.map((r) => ({
            ...r,
            rcid: Number(r.rcid) + (p * 5 + k + 1) * 10_000_000,
          }))).flat(),
      },
    }));
}

/** Parses, validates and publishes each page in turn; the first five are warm-up. */
async function timePages(
  publisher: Publisher,
  bodies: string[],
  { lv, topics }: { lv: RecordedWiki; topics: Topics },
): Promise<PageTimings> {
  const total: number[] = [], prep: number[] = [], pub: number[] = [];
  let cursor = Cursor.at("2020-04-01T00:00:00Z");
  for (const [i, body] of bodies.entries()) {
    const t0 = performance.now();
    const rows = JSON.parse(body).query.recentchanges as unknown[];
    const built = buildPage(rows, {
      cursor,
      wiki: "lvwiki",
      host: lv.host,
      serverName: lv.servername,
      topics,
      keepMs: 120_000,
      wikiNowMs: Date.now(),
      now: new Date(),
    });
    const t1 = performance.now();
    await publisher.publish(built.records);
    const t2 = performance.now();
    cursor = built.next;
    if (built.fresh.length !== 500) {
      throw new Error(`Expected 500 new rows, got ${built.fresh.length}`);
    }
    if (i < 5) continue; // warm-up
    prep.push(t1 - t0);
    pub.push(t2 - t1);
    total.push(t2 - t0);
  }
  return { total, prep, pub };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

if (import.meta.main) {
  const { createLogger } = await import("../lib/core/log.ts");
  const say = (line: string) =>
    Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  const r = await runProducerBench({
    brokers: Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092",
    log: createLogger({ service: "bench", level: "warn" }),
    say,
  });
  say(JSON.stringify(r));
}
