/**
 * @module The reliability suite: recorded rows revealed out of order by the fake MediaWiki (with
 * API faults) -> producer.ts -> Kafka -> consumer.ts -> PostgreSQL, under a seeded schedule of
 * kill -9, broker and database restarts, a second consumer and poison records; then checks that
 * every row arrived exactly once and equal to the source. Used by tests/integration/chaos_test.ts
 * (short form) and scripts/chaos.ts (long form).
 */
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import { createKafka } from "../../lib/kafka/client.ts";
import { createLogger } from "../../lib/core/log.ts";
import type { Envelope } from "../../lib/schemas/envelope.ts";
import { topicNames } from "../../lib/pipeline/producer.ts";
import { type Fault, loadStreamAsApiWiki } from "../fakes/fake_mediawiki.ts";
import { startScaledWiki } from "./_scaled_wiki.ts";
import { type Child, spawnService } from "./_process.ts";
import { restartService, runServices, type ServicePorts } from "./_services.ts";
import { prng, type Random } from "./_random.ts";
import { adminUrl, createAppDatabase, servicesCommand } from "../_pg_admin.ts";
import { freePortRange } from "../_ports.ts";

/** Options for {@linkcode runChaos}. */
export interface ChaosOptions {
  seed: number;
  /** Copies of the 3,796 recorded rows (copy k: rcid + k*1e10, timestamps + k days). */
  copies: number;
  /** Faults of the process/service kind to schedule. */
  faults: number;
  /** Give up after this long. */
  timeoutMs: number;
  /** How long the reveal of all rows takes (faults are spread over it). */
  revealSeconds: number;
  /** Ports and folder of the suite's own Kafka and PostgreSQL. */
  kafkaPort?: number;
  pgPort?: number;
  servicesDir?: string;
  /** Appends each process's output to `<logDir>/<name>.log`. */
  logDir?: string;
  /** Progress lines. */
  onProgress?(line: string): void;
}

/** One fault as it happened. */
export interface FaultRecord {
  kind: string;
  at_s: number;
  /** From the end of the fault (process restarted, service back) to the next written row. */
  recovery_s: number | null;
}

/** What a run did and found. */
export interface ChaosReport {
  seed: number;
  source_rows: number;
  poison_records: number;
  api_faults: Record<string, number>;
  faults: FaultRecord[];
  elapsed_s: number;
  rows_per_s: number;
  table_rows: number;
  missing: number;
  duplicates: number;
  mismatched: string[];
  aggregate_mismatches: number;
  poison_missing: number;
  unexpected_exits: string[];
  /** Faults the harness could not inject (e.g. a broker that would not start again): its own failure, not data loss. */
  harness_failures: string[];
  ok: boolean;
}

const ROOT = new URL("../../", import.meta.url).pathname;
const RCID_SHIFT = 10_000_000_000n;
const DAY_MS = 86_400_000;
const PROCESS_FAULTS = [
  "kill-producer",
  "kill-consumer",
  "restart-kafka",
  "restart-pg",
  "second-consumer",
  "poison",
] as const;
const API_FAULTS: Fault[] = [
  "maxlag",
  "429",
  "503html",
  "timeout",
  "truncated",
  "garbage",
];

/** Runs the suite once; resolves with the report (ok false when anything was lost or wrong). */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const say = options.onProgress ?? (() => {});
  const random = prng(options.seed);
  const servicesEnv = chaosServicesEnv(options);
  const kafkaPort = options.kafkaPort!, pgPort = options.pgPort!;
  const ports: ServicePorts = {
    kafka: [kafkaPort, kafkaPort + 1],
    pg: [pgPort],
  };
  const harnessFailures: string[] = [];
  const restart = async (service: keyof ServicePorts, downMs: number) => {
    try {
      await restartService(service, { env: servicesEnv, ports, downMs });
    } catch (err) {
      const line = `restart-${service}: ${(err as Error).message}: ${
        String((err as Error).cause ?? "")
      }`;
      harnessFailures.push(line);
      say(line);
    }
  };
  await runServices("start", servicesEnv);

  const id = `${options.seed}_${crypto.randomUUID().slice(0, 6)}`;
  const brokers = `127.0.0.1:${kafkaPort}`;
  const dbName = `chaos_${id}`;
  // The pipeline's role cannot create databases: the suite's superuser makes one it owns.
  const appUrl = /DATABASE_URL=(\S+)/.exec(
    await servicesCommand("env", servicesEnv),
  )![1]!;
  const databaseUrl = await createAppDatabase(
    appUrl,
    dbName,
    await adminUrl(servicesEnv),
  );

  const recorded = loadStreamAsApiWiki();
  const source = shiftedCopies(recorded.rows, options.copies);
  const total = source.length;
  const wiki = await startScaledWiki({
    host: recorded.host,
    wikiid: recorded.wikiid,
    servername: recorded.servername,
    copies: options.copies,
    base: recorded.rows,
    shift: shiftRow,
    pageSize: 500,
  });
  const topic = `chaos.${id}.rc`;
  const env = {
    KAFKA_BROKERS: brokers,
    DATABASE_URL: databaseUrl,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: `chaos-${id}`,
    KAFKA_TRANSACTIONAL_ID: `chaos-${id}`,
    KAFKA_CLIENT_ID: `chaos-${id}`,
    MEDIAWIKI_API_URL: wiki.urlTemplate,
    WIKIS: recorded.host,
    POLL_INTERVAL_MS: "500",
    HTTP_TIMEOUT_MS: "2000",
    HTTP_PORT: "0",
    PRODUCER_HTTP_PORT: "0",
    LOG_LEVEL: "info",
  };
  const since = ["--since", "2018-03-07T00:00:00Z"];
  const unexpected: string[] = [];
  const procs: Record<string, Child | undefined> = {};
  const spawn = async (name: string, entry: string, args: string[] = []) => {
    const child = await spawnService(
      `${ROOT}${entry}`,
      args,
      env,
      options.logDir ? `${options.logDir}/${name}.log` : undefined,
    );
    procs[name] = child;
    child.status.then((s) => {
      if (!child.killed) {
        const line = `${name} exited with code ${s.code}: ${child.tail()}`;
        unexpected.push(line);
        say(line);
      }
    });
    return child;
  };
  await spawn("producer", "producer.ts", since);
  await spawn("consumer", "consumer.ts");

  let db = connectDb(databaseUrl, { max: 2 });
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  let written = 0;
  const poller = setInterval(async () => {
    try {
      // A query on a socket the restart killed can hang: give up and reconnect after 3 s.
      const [r] = await Promise.race([
        db`select count(*)::int as n from wiki_recent_changes`,
        delay(3000).then(() => Promise.reject(new Error("Poll timed out"))),
      ]);
      written = r!.n;
    } catch {
      void db.end({ timeout: 0 }).catch(() => {});
      db = connectDb(databaseUrl, { max: 2 });
    }
  }, 250);

  // Reveal rows in their recorded arrival order while API faults are queued now and then.
  const step = Math.max(
    1,
    Math.round(total / (options.revealSeconds * 10) / 1.5),
  );
  const apiFaults: Record<string, number> = {};
  let revealed = 0;
  let lastFaultAt = 0;
  const revealer = (async () => {
    while (revealed < total) {
      revealed = Math.min(total, revealed + step + Math.floor(random() * step));
      wiki.reveal(revealed);
      // About one API request in ten faulted, never two in a row.
      if (
        wiki.faults.length === 0 && wiki.requests - lastFaultAt >= 5 &&
        random() < 0.5
      ) {
        lastFaultAt = wiki.requests;
        const f = API_FAULTS[Math.floor(random() * API_FAULTS.length)]!;
        wiki.faults.push(f);
        apiFaults[f] = (apiFaults[f] ?? 0) + 1;
      }
      await delay(100);
    }
  })();

  // The fault schedule: evenly spread over the expected reveal time, kinds drawn by the seed.
  const kinds = Array.from(
    { length: options.faults },
    (_, i) =>
      i < PROCESS_FAULTS.length
        ? PROCESS_FAULTS[i]!
        : PROCESS_FAULTS[Math.floor(random() * PROCESS_FAULTS.length)]!,
  ).sort(() => random() - 0.5);
  const revealMs = options.revealSeconds * 1000;
  // Faults start once the pipeline runs (the first rows are in the table).
  await waitFor(() => Promise.resolve(written > 0), options.timeoutMs);
  const t0 = Date.now();
  const faults: FaultRecord[] = [];
  const poison: { partition: number; offset: string }[] = [];
  for (const [i, kind] of kinds.entries()) {
    const target = ((i + 0.5 + (random() - 0.5) * 0.8) / kinds.length) *
      revealMs;
    await delay(Math.max(0, target - (Date.now() - t0)));
    const at = elapsed();
    say(`${at.toFixed(1)} s: ${kind} (rows written ${written}/${total})`);
    await inject(kind, random, {
      procs,
      spawn,
      restart,
      since,
      brokers,
      topic,
      poison,
      unexpected,
    });
    const end = Date.now();
    const before = written;
    const record: FaultRecord = { kind, at_s: at, recovery_s: null };
    faults.push(record);
    void (async () => {
      while (Date.now() - end < options.timeoutMs) {
        if (written > before || written >= total) {
          record.recovery_s = (Date.now() - end) / 1000;
          return;
        }
        await delay(100);
      }
    })();
  }
  await revealer;

  // Wait until everything arrived (or the time is up).
  const deadline = started + options.timeoutMs;
  while (Date.now() < deadline && written < total) {
    await delay(500);
    if (Math.round(elapsed()) % 10 === 0) {
      say(`${elapsed().toFixed(0)} s: ${written}/${total} rows`);
    }
  }
  const elapsedS = elapsed();
  // Let the dead letters of the last poison records land.
  await waitFor(async () => {
    const [r] = await db`select count(*)::int as n from dead_letters`;
    return r!.n >= poison.length;
  }, 30_000);
  clearInterval(poller);

  for (const [name, p] of Object.entries(procs)) {
    if (!p) continue;
    // This very process: a name that exited before may have been started again since.
    const exited = p.exited;
    p.killed = true;
    if (!exited) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* already exited */ }
    }
    const s = await p.status;
    if (s.code !== 0 && !p.wasKilled9) {
      unexpected.push(`${name} stopped with code ${s.code}: ${p.tail()}`);
    }
  }
  await wiki.close();

  say("checking rows, aggregates and dead letters");
  const check = await verify(db, source, recorded, poison, topic);
  await db.end({ timeout: 5 });
  const report: ChaosReport = {
    seed: options.seed,
    source_rows: total,
    poison_records: poison.length,
    api_faults: apiFaults,
    faults,
    elapsed_s: Math.round(elapsedS * 10) / 10,
    rows_per_s: Math.round(check.tableRows / elapsedS),
    table_rows: check.tableRows,
    missing: check.missing,
    duplicates: check.duplicates,
    mismatched: check.mismatched,
    aggregate_mismatches: check.aggregateMismatches,
    poison_missing: check.poisonMissing,
    unexpected_exits: unexpected,
    harness_failures: harnessFailures,
    ok: false,
  };
  report.ok = report.missing === 0 && report.duplicates === 0 &&
    report.mismatched.length === 0 && report.aggregate_mismatches === 0 &&
    report.poison_missing === 0 && unexpected.length === 0 &&
    report.table_rows === total;
  return report;
}

type ServicesOptions = Pick<
  ChaosOptions,
  "kafkaPort" | "pgPort" | "servicesDir"
>;

/** Stops the suite's own Kafka and PostgreSQL (pass the options given to `runChaos`). */
export async function stopChaosServices(
  options: ServicesOptions,
): Promise<void> {
  if (options.kafkaPort === undefined) return; // never started
  await runServices("stop", chaosServicesEnv(options));
  await Deno.remove(options.servicesDir!, { recursive: true }).catch(() => {});
}

/**
 * The suite's own Kafka and PostgreSQL: free ports and a folder of this run's own unless given.
 * The choice is written back into `options`, so `stopChaosServices(options)` finds them.
 */
function chaosServicesEnv(options: ServicesOptions): Record<string, string> {
  options.kafkaPort ??= freePortRange(2); // the controller takes the next port
  options.pgPort ??= freePortRange(1);
  options.servicesDir ??= `${ROOT}.cache/chaos-services/${options.kafkaPort}`;
  return {
    WIKISTREAM_KAFKA_PORT: String(options.kafkaPort),
    WIKISTREAM_PG_PORT: String(options.pgPort),
    WIKISTREAM_SERVICES_DIR: options.servicesDir,
  };
}

interface InjectContext {
  procs: Record<string, Child | undefined>;
  spawn(name: string, entry: string, args?: string[]): Promise<Child>;
  /** Stops the service, keeps it down `downMs`, starts it again (retrying); never throws. */
  restart(service: keyof ServicePorts, downMs: number): Promise<void>;
  since: string[];
  brokers: string;
  topic: string;
  poison: { partition: number; offset: string }[];
  unexpected: string[];
}

async function inject(
  kind: typeof PROCESS_FAULTS[number],
  random: Random,
  ctx: InjectContext,
): Promise<void> {
  switch (kind) {
    case "kill-producer":
    case "kill-consumer": {
      const name = kind === "kill-producer" ? "producer" : "consumer";
      const p = ctx.procs[name]!;
      p.killed = p.wasKilled9 = true;
      try {
        p.child.kill("SIGKILL");
      } catch { /* already exited: recorded as unexpected */ }
      await p.status;
      // A supervisor restarts a killed process after a short pause.
      await delay(300 + random() * 1200);
      await ctx.spawn(
        name,
        `${name}.ts`,
        name === "producer" ? ctx.since : [],
      );
      return;
    }
    case "restart-kafka":
      await ctx.restart("kafka", 1000 + random() * 3000);
      return;
    case "restart-pg":
      await ctx.restart("pg", 1000 + random() * 3000);
      return;
    case "second-consumer": {
      const second = await ctx.spawn("consumer2", "consumer.ts");
      // Leave only after joining: a SIGTERM during startup waits for the 15 s hard exit (exit 1).
      await waitFor(
        () => Promise.resolve(second.seen('"msg":"consuming"')),
        60_000,
      );
      await delay(2000 + random() * 4000);
      second.killed = true;
      second.child.kill("SIGTERM");
      const s = await second.status;
      if (s.code !== 0) {
        ctx.unexpected.push(
          `consumer2 stopped with code ${s.code}: ${second.tail()}`,
        );
      }
      ctx.procs.consumer2 = undefined;
      return;
    }
    case "poison":
      ctx.poison.push(...await injectPoison(ctx.brokers, ctx.topic));
      return;
  }
}

/** Writes records the consumer cannot decode straight into the topic. */
async function injectPoison(
  brokers: string,
  topic: string,
): Promise<{ partition: number; offset: string }[]> {
  const log = createLogger({ service: "chaos", level: "error" });
  const kafka = createKafka({
    brokers: [brokers],
    clientId: "chaos-poison",
    log,
  });
  const producer = kafka.producer();
  await producer.connect();
  try {
    const enc = (v: unknown) => JSON.stringify(v);
    const values: (string | null)[] = [
      "\u0000\u0001garbage{{{",
      '{"v":1,"source":"action_api","wiki":"x"',
      enc({ v: 2, source: "action_api", wiki: "x", server_name: "y" }),
      enc({
        v: 1,
        source: "action_api",
        wiki: "wikidatawiki",
        server_name: "www.wikidata.org",
        fetched_at: "2024-04-26T00:00:00Z",
        row: { type: "edit", rcid: "-1", timestamp: "2018-03-07T16:00:00Z" },
      }),
      enc({
        v: 1,
        source: "action_api",
        wiki: "wikidatawiki",
        server_name: "www.wikidata.org",
        fetched_at: "2024-04-26T00:00:00Z",
        row: {
          type: "edit",
          rcid: 1,
          timestamp: "2018-03-07T16:00:00Z",
          title: "nul\u0000",
        },
      }),
      null,
    ];
    // One send per record: its baseOffset is then that record's exact offset.
    const out: { partition: number; offset: string }[] = [];
    for (const [i, value] of values.entries()) {
      const [res] = await producer.send({
        topic: topicNames(topic).events,
        messages: [{ key: `poison:${crypto.randomUUID()}:${i}`, value }],
      });
      out.push({ partition: res!.partition, offset: String(res!.baseOffset) });
    }
    return out;
  } finally {
    await producer.disconnect();
  }
}

interface Verified {
  tableRows: number;
  missing: number;
  duplicates: number;
  mismatched: string[];
  aggregateMismatches: number;
  poisonMissing: number;
}

/** Compares the table with the source, the aggregates with a recount, and the dead letters. */
async function verify(
  db: Sql,
  source: Record<string, unknown>[],
  recorded: ReturnType<typeof loadStreamAsApiWiki>,
  poison: { partition: number; offset: string }[],
  topic: string,
): Promise<Verified> {
  const want = new Map<string, Record<string, unknown>>();
  for (const row of source) want.set(String(row.rcid), row);
  let tableRows = 0, missing = 0;
  const mismatched: string[] = [];
  const seen = new Set<string>();
  const cursor = db`select *, extract(epoch from event_time)::float8 as epoch
    from wiki_recent_changes`.cursor(5000);
  for await (const rows of cursor) {
    for (const got of rows) {
      tableRows++;
      const rcid = String(got.rcid);
      seen.add(rcid);
      const src = want.get(rcid);
      if (!src) {
        mismatched.push(`${rcid}: not a source row`);
        continue;
      }
      const env: Envelope = {
        v: 1,
        source: "action_api",
        wiki: recorded.wikiid,
        server_name: recorded.servername,
        fetched_at: "2024-04-26T00:00:00Z",
        row: src,
      };
      const expected = decodeValue(
        new TextEncoder().encode(JSON.stringify(env)),
      );
      for (const [col, value] of Object.entries(expected)) {
        const actual: unknown = col === "event_time"
          ? new Date(got.epoch * 1000).toISOString()
          : got[col];
        if (JSON.stringify(actual) !== JSON.stringify(value)) {
          if (col === "raw" && deepEqualUnordered(actual, value)) continue;
          if (mismatched.length < 20) {
            mismatched.push(`${rcid} ${col}: ${JSON.stringify(actual)}`);
          }
        }
      }
    }
  }
  for (const k of want.keys()) if (!seen.has(k)) missing++;
  const [agg] = await db`
    select count(*)::int as n from (
      (select wiki, minute, changes, edits, new_pages, log_events, categorize,
              bot_changes, anon_changes, bytes_added, bytes_removed
         from wiki_activity_minute
       except
       select wiki, date_trunc('minute', event_time), count(*),
              count(*) filter (where change_type = 'edit'),
              count(*) filter (where change_type = 'new'),
              count(*) filter (where change_type = 'log'),
              count(*) filter (where change_type = 'categorize'),
              count(*) filter (where is_bot), count(*) filter (where is_anon),
              coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
                filter (where change_type in ('edit', 'new')), 0),
              coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
                filter (where change_type in ('edit', 'new')), 0)
         from wiki_recent_changes group by 1, 2)
      union all
      (select wiki, date_trunc('minute', event_time), count(*), 0, 0, 0, 0, 0, 0, 0, 0
         from wiki_recent_changes group by 1, 2
       except
       select wiki, minute, changes, 0, 0, 0, 0, 0, 0, 0, 0 from wiki_activity_minute)
    ) d`;
  const dl =
    await db`select partition, "offset"::text as offset from dead_letters
    where topic = ${topicNames(topic).events}`;
  const stored = new Set(dl.map((d) => `${d.partition}:${d.offset}`));
  const poisonMissing =
    poison.filter((p) => !stored.has(`${p.partition}:${p.offset}`)).length;
  return {
    tableRows,
    missing,
    duplicates: tableRows - seen.size,
    mismatched,
    aggregateMismatches: agg!.n,
    poisonMissing,
  };
}

/** Copy k of the recorded rows, in arrival order: rcid + k*1e10, timestamp + k days. */
function shiftedCopies(
  rows: Record<string, unknown>[],
  copies: number,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let k = 0; k < copies; k++) {
    for (const r of rows) out.push(shiftRow(r, k));
  }
  return out;
}

/** Shifts one recorded row to copy k; no other field changes. */
export function shiftRow(
  row: Record<string, unknown>,
  k: number,
): Record<string, unknown> {
  if (k === 0) return row;
  return {
    ...row,
    rcid: Number(BigInt(String(row.rcid)) + BigInt(k) * RCID_SHIFT),
    timestamp: new Date(Date.parse(String(row.timestamp)) + k * DAY_MS)
      .toISOString().replace(".000Z", "Z"),
  };
}

function deepEqualUnordered(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(norm)
      : v && typeof v === "object"
      ? Object.fromEntries(
        Object.entries(v).sort(([x], [y]) => x < y ? -1 : 1).map((
          [k, x],
        ) => [k, norm(x)]),
      )
      : v;
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

async function waitFor(
  fn: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return true;
    await delay(250);
  }
  return false;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
