/** @module `deno task bench:history`: millions of shifted recorded rows in a scratch database; insert rate, size per million rows, query p50/p95. */
import { createLogger } from "../lib/core/log.ts";
import type { Sql } from "../lib/sink/db.ts";
import { migrate } from "../lib/sink/migrate.ts";
import { createSink, type SinkRow } from "../lib/sink/sink.ts";
import { COLUMNS } from "../lib/sink/copy.ts";
import { ensureMonth } from "../lib/sink/partitions.ts";
import { decodeValue } from "../lib/sink/decode.ts";
import { measureQueries } from "./_history_queries.ts";
import type { Envelope } from "../lib/schemas/envelope.ts";
import { loadRecordedWikis } from "../tests/fakes/fake_mediawiki.ts";
import { recordedStreamLines } from "../tests/fakes/fake_eventstreams.ts";
import { freshDatabase } from "../tests/integration/_consumer_fixture.ts";

const STREAM_FILES = [
  "eventstreams_wikidatawiki_2018-03-07_quickstatements_batch.jsonl",
  "eventstreams_wikidatawiki_2018-03-15_bot_new_items.jsonl",
  "eventstreams_multiwiki_2024-04-26_extracted_from_readme.jsonl",
];
/** Rows per year the issue plans for (every wiki): the density the rows are spread at. */
const ROWS_PER_YEAR = 1.5e9;
const START = Date.parse("2025-01-28T00:00:00Z");

const USAGE =
  `Usage: ./wikistream bench:history [--rows N] [--sink-rows N] [--samples N]

Loads millions of shifted recorded rows into a scratch database on the local PostgreSQL and
prints the insert rate, the size per million rows and query p50/p95. See docs/history.md.

Flags:
  --rows N       Rows to load (default 20000000)
  --sink-rows N  Rows written through the sink for its rate (default 200000)
  --samples N    Samples per query (default 20)
  -h, --help     Print this help and exit
`;

const enc = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(enc.encode(line + "\n"));

/** Runs the bench; returns the exit code. */
export async function main(args = Deno.args): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    Deno.stdout.writeSync(new TextEncoder().encode(USAGE));
    return 0;
  }
  const rows = Number(flag(args, "--rows") ?? 20_000_000);
  const sinkRows = Number(flag(args, "--sink-rows") ?? 200_000);
  const samples = Number(flag(args, "--samples") ?? 20);
  const url = Deno.env.get("DATABASE_URL") ?? await localDatabase();
  await using db = await freshDatabase(url);
  await migrate(db.sql);
  const templates = templateRows();
  const spanMs = rows / ROWS_PER_YEAR * 365 * 86_400_000;
  say(
    `bench:history: ${rows} rows (${templates.length} recorded rows shifted), spread over ${
      (spanMs / 86_400_000).toFixed(1)
    } days at ${ROWS_PER_YEAR / 1e9}B rows/year`,
  );
  const sink = await sinkPhase(db.sql, templates, { sinkRows, rows, spanMs });
  const perRow = await measureBytesPerRow(db.sql, sinkRows);
  const free = await freeBytes();
  say(
    `bytes per row after ${sinkRows} rows: ${perRow.toFixed(0)}; projected ${
      gb(perRow * rows)
    } GB for ${rows} rows; ${gb(free)} GB free`,
  );
  if (perRow * rows > free * 0.5) {
    say("refusing: the projected size exceeds half the free disk; use --rows");
    return 1;
  }
  const bulk = await bulkPhase(db.sql, templates.length, {
    from: sinkRows,
    rows,
    spanMs,
  });
  const [stored] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from wiki_recent_changes`;
  const sizes = await measureSizes(db.sql, stored!.n);
  const queries = await measureQueries(db.sql, samples, say);
  say(JSON.stringify({ rows: stored!.n, sink, bulk, sizes, queries }));
  return 0;
}

/** The recorded rows (Action API and EventStreams) as the consumer decodes them. */
function templateRows(): SinkRow[] {
  const envs: Envelope[] = [];
  for (const w of loadRecordedWikis()) {
    for (const row of w.rows) {
      envs.push({
        v: 1,
        source: "action_api",
        wiki: w.wikiid,
        server_name: w.servername,
        fetched_at: "2025-01-01T00:00:00Z",
        row,
      });
    }
  }
  for (const file of STREAM_FILES) {
    for (const line of recordedStreamLines(file)) {
      const row = JSON.parse(line);
      envs.push({
        v: 1,
        source: "eventstreams",
        wiki: row.wiki,
        server_name: row.server_name,
        fetched_at: "2025-01-01T00:00:00Z",
        row,
      });
    }
  }
  return envs.map((e, i) => ({
    ...decodeValue(enc.encode(JSON.stringify(e))),
    kafka_partition: 0,
    kafka_offset: String(i),
  }));
}

/** Row `g` of the bench: template `g % T`, rcid and page shifted per copy, time spread evenly. */
function benchRow(
  templates: SinkRow[],
  g: number,
  spec: { rows: number; spanMs: number },
): SinkRow {
  const t = templates[g % templates.length]!;
  const k = Math.floor(g / templates.length);
  const time = START + Math.floor(g / spec.rows * spec.spanMs);
  return {
    ...t,
    rcid: String(BigInt(t.rcid) + BigInt(k) * 10_000_000_000n),
    page_id: t.page_id && t.page_id !== "0"
      ? String(BigInt(t.page_id) + BigInt(k % 100) * 10_000_000_000n)
      : t.page_id,
    event_time: new Date(time).toISOString(),
    kafka_offset: String(g),
  };
}

/** The first rows through the real sink (COPY, merge, rollups): the consumer's insert rate. */
async function sinkPhase(
  sql: Sql,
  templates: SinkRow[],
  spec: { sinkRows: number; rows: number; spanMs: number },
): Promise<{ rows: number; rows_per_s: number }> {
  const sink = createSink(sql, {
    log: createLogger({ service: "bench", level: "warn" }),
  });
  const t0 = performance.now();
  for (let g = 0; g < spec.sinkRows; g += 5000) {
    const batch: SinkRow[] = [];
    for (let i = g; i < Math.min(g + 5000, spec.sinkRows); i++) {
      batch.push(benchRow(templates, i, spec));
    }
    await sink.write(batch);
  }
  const s = (performance.now() - t0) / 1000;
  const rate = Math.round(spec.sinkRows / s);
  say(`sink: ${spec.sinkRows} rows in ${s.toFixed(1)} s = ${rate} rows/s`);
  return { rows: spec.sinkRows, rows_per_s: rate };
}

/** Bytes on disk per row so far (heap, TOAST and indexes of every partition). */
async function measureBytesPerRow(sql: Sql, rows: number): Promise<number> {
  const [r] = await sql<{ b: number }[]>`
    select sum(pg_total_relation_size(relid))::float8 as b
    from pg_partition_tree('wiki_recent_changes')`;
  return (r?.b ?? 0) / rows;
}

/**
 * The rest of the rows generated inside PostgreSQL from the templates (INSERT ... SELECT, 1M at a
 * time), then the rollups recounted for them: the server-side insert rate.
 */
async function bulkPhase(
  sql: Sql,
  count: number,
  spec: { from: number; rows: number; spanMs: number },
): Promise<{ rows: number; rows_per_s: number; rollup_s: number }> {
  await sql`create unlogged table bench_template (like wiki_recent_changes)`;
  await sql`alter table bench_template add column i int`;
  await sql`insert into bench_template select *, (kafka_offset)::int from wiki_recent_changes
    where kafka_offset < ${count}`;
  for (
    let m = START;
    m < START + spec.spanMs + 31 * 86_400_000;
    m += 28 * 86_400_000
  ) {
    await ensureMonth(sql, new Date(m));
  }
  const cols = COLUMNS.join(", ");
  const shifted = COLUMNS.map((c) =>
    ({
      rcid: `rcid + (g / ${count})::bigint * 10000000000`,
      page_id:
        `case when page_id > 0 then page_id + ((g / ${count}) % 100)::bigint * 10000000000
        else page_id end`,
      event_time: `timestamptz '${new Date(START).toISOString()}'
        + (g::float8 / ${spec.rows} * ${spec.spanMs}) * interval '1 millisecond'`,
      kafka_offset: "g",
    } as Record<string, string>)[c] ?? c
  ).join(", ");
  const t0 = performance.now();
  for (let lo = spec.from; lo < spec.rows; lo += 1_000_000) {
    const hi = Math.min(lo + 1_000_000, spec.rows);
    await sql.unsafe(`
      insert into wiki_recent_changes (${cols})
      select ${shifted} from generate_series(${lo}, ${hi - 1}) g
      join bench_template t on t.i = g % ${count}`);
    say(`bulk: ${hi} rows (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const s = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await recountRollups(sql, spec.from);
  const rollupS = (performance.now() - t1) / 1000;
  await sql`drop table bench_template`;
  await sql`vacuum (analyze) wiki_recent_changes`;
  const rate = Math.round((spec.rows - spec.from) / s);
  say(
    `bulk: ${spec.rows - spec.from} rows in ${s.toFixed(0)} s = ${rate} rows/s`,
  );
  return { rows: spec.rows - spec.from, rows_per_s: rate, rollup_s: rollupS };
}

/** Adds the bulk rows (kafka_offset >= from) to the three activity tables. */
async function recountRollups(sql: Sql, from: number): Promise<void> {
  const counts = `count(*), count(*) filter (where change_type = 'edit'),
    count(*) filter (where change_type = 'new'), count(*) filter (where change_type = 'log'),
    count(*) filter (where change_type = 'categorize'), count(*) filter (where is_bot),
    count(*) filter (where is_anon),
    coalesce(sum(greatest(coalesce(new_len, 0) - coalesce(old_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0),
    coalesce(sum(greatest(coalesce(old_len, 0) - coalesce(new_len, 0), 0))
      filter (where change_type in ('edit', 'new')), 0)`;
  const add =
    `changes = a.changes + excluded.changes, edits = a.edits + excluded.edits,
    new_pages = a.new_pages + excluded.new_pages, log_events = a.log_events + excluded.log_events,
    categorize = a.categorize + excluded.categorize,
    bot_changes = a.bot_changes + excluded.bot_changes,
    anon_changes = a.anon_changes + excluded.anon_changes,
    bytes_added = a.bytes_added + excluded.bytes_added,
    bytes_removed = a.bytes_removed + excluded.bytes_removed`;
  const src = `from wiki_recent_changes where kafka_offset >= ${from}`;
  await sql.unsafe(`insert into wiki_activity_minute as a
    select wiki, date_trunc('minute', event_time), ${counts} ${src} group by 1, 2
    on conflict (wiki, minute) do update set ${add}`);
  for (const b of ["hour", "day"]) {
    await sql.unsafe(`insert into wiki_activity_${b} as a
      select wiki, date_trunc('${b}', event_time, 'UTC'), coalesce(namespace, -1), ${counts}
      ${src} group by 1, 2, 3 on conflict (wiki, ${b}, namespace) do update set ${add}`);
  }
}

/** Size on disk in total and per million rows: raw table (heap, TOAST, indexes), rollups. */
async function measureSizes(sql: Sql, rows: number) {
  const [r] = await sql<Record<string, number>[]>`
    select sum(pg_table_size(relid))::float8 as table_bytes,
      sum(pg_indexes_size(relid))::float8 as index_bytes,
      (select pg_total_relation_size('wiki_activity_minute') + pg_total_relation_size('wiki_activity_hour')
        + pg_total_relation_size('wiki_activity_day'))::float8 as rollup_bytes,
      (select count(*) from pg_partition_tree('wiki_recent_changes') where isleaf)::int as partitions
    from pg_partition_tree('wiki_recent_changes')`;
  const perM = (b: number) => Math.round(b / rows * 1e6 / 1048576);
  const sizes = {
    partitions: r!.partitions!,
    table_mb_per_million: perM(r!.table_bytes!),
    index_mb_per_million: perM(r!.index_bytes!),
    rollup_mb: Math.round(r!.rollup_bytes! / 1048576),
    total_gb: gb(r!.table_bytes! + r!.index_bytes! + r!.rollup_bytes!),
    bytes_per_row: Math.round((r!.table_bytes! + r!.index_bytes!) / rows),
  };
  say(`sizes: ${JSON.stringify(sizes)}`);
  return sizes;
}

function gb(bytes: number): number {
  return Math.round(bytes / 1e8) / 10;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Free bytes on the disk that holds the database (`df` on the working directory). */
async function freeBytes(): Promise<number> {
  const out = await new Deno.Command("df", {
    args: ["-B1", "--output=avail", "."],
  })
    .output();
  return Number(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1));
}

/** DATABASE_URL of the local services (started if needed). */
async function localDatabase(): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["scripts/services.sh", "start"],
    cwd: new URL("../", import.meta.url),
    stderr: "inherit",
  }).output();
  const url = /DATABASE_URL=(\S+)/.exec(new TextDecoder().decode(out.stdout));
  if (!out.success || !url) throw new Error("Cannot start the local services");
  return url[1]!;
}

if (import.meta.main) Deno.exit(await main());
