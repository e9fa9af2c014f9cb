/** The dashboard in a real browser (Debian chromium via playwright-core) against real services. */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { startConsumer } from "../../lib/pipeline/consumer.ts";
import { createDashboardData } from "../../lib/http/dashboard_data.ts";
import { createApp } from "../../lib/http/app.ts";
import { createMetrics } from "../../lib/http/metrics.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { createSink, type SinkRow } from "../../lib/sink/sink.ts";
import {
  captureLogger,
  eventually,
  tempSchema,
  testConfig,
} from "../_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../../.artifacts/", import.meta.url);

let rcid = 1000;
/** A change row as the normaliser would produce it. */
function row(
  wiki: string,
  eventTime: string,
  init: Partial<SinkRow> = {},
): SinkRow {
  rcid++;
  return {
    wiki,
    server_name: `${wiki.replace(/wiki$/, "")}.wikipedia.org`,
    rcid: String(rcid),
    change_type: "edit",
    namespace: 0,
    title: `Page ${rcid}`,
    page_id: String(rcid),
    rev_id: String(rcid * 10),
    old_rev_id: String(rcid * 10 - 1),
    user_name: "Editor",
    user_id: "42",
    is_anon: false,
    is_temp: false,
    is_bot: false,
    is_minor: false,
    is_new: false,
    old_len: 100,
    new_len: 120,
    event_time: eventTime,
    comment: "test",
    tags: [],
    sha1: null,
    log_id: null,
    log_type: null,
    log_action: null,
    log_params: null,
    user_hidden: false,
    comment_hidden: false,
    action_hidden: false,
    sha1_hidden: false,
    suppressed: false,
    raw: { rcid },
    kafka_partition: 0,
    kafka_offset: String(rcid),
    ...init,
  };
}

/** Recorded-data style rows: two days old, so the dashboard is in replay mode. */
function fixtureRows(base: number): SinkRow[] {
  const at = (min: number, sec = 0) =>
    new Date(base + min * 60_000 + sec * 1000).toISOString();
  const rows: SinkRow[] = [];
  for (let m = 0; m < 30; m++) {
    for (let i = 0; i < 1 + (m % 4); i++) rows.push(row("enwiki", at(m, i)));
    if (m % 2 === 0) rows.push(row("dewiki", at(m, 30), { is_bot: true }));
    if (m % 5 === 0) {
      rows.push(row("lvwiki", at(m, 40), {
        is_anon: true,
        user_name: "192.0.2.7",
        user_id: "0",
      }));
    }
  }
  for (let i = 0; i < 6; i++) {
    rows.push(row("enwiki", at(20 + i, 50), {
      title: "Most <b>edited</b> page",
      page_id: "777",
    }));
  }
  rows.push(row("dewiki", at(28), {
    change_type: "new",
    is_new: true,
    title: "Neue Seite",
    page_id: "888",
    old_len: null,
    old_rev_id: null,
    user_name: "Autorin",
  }));
  return rows;
}

Deno.test("dashboard shows the rows in PostgreSQL and updates itself", async () => {
  const config = testConfig();
  await using db = await tempSchema(config);
  const log = captureLogger("warn");
  await migrate(db.sql);
  const controller = new AbortController();
  const consumer = await startConsumer(config, {
    log,
    signal: controller.signal,
    schema: db.name,
  });
  const metrics = createMetrics();
  const app = createApp({
    service: "consumer",
    health: consumer.health,
    ready: consumer.ready,
    lag: consumer.lag,
    metrics: () => metrics.render({ consumer: consumer.stats }),
    dashboard: createDashboardData(db.sql),
    sources: () => [{
      wiki: "en.wikipedia.org",
      state: "retrying",
      last_success: null,
      last_error: {
        at: "2024-04-26T12:00:00.000Z",
        name: "UpstreamError",
        message: "Cannot reach the wiki",
      },
      retry_in_seconds: 8,
    }],
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: () => {},
  }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const profile = await Deno.makeTempDir({ prefix: "wikistream-chromium-" });
  const base = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000;
  const sink = createSink(db.sql, { log });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  try {
    const rows = fixtureRows(base);
    const first = await sink.write(rows);
    assert.equal(first.inserted, rows.length);

    const page = context.pages()[0] ?? await context.newPage();
    await page.addInitScript(() => {
      (globalThis as unknown as { DASHBOARD_INTERVAL_MS: number })
        .DASHBOARD_INTERVAL_MS = 1000;
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector("#chart rect[data-wiki]");

    // Chart: per-wiki sums equal wiki_activity_minute over the whole (replay) window.
    const expected = await db.sql<{ wiki: string; n: number }[]>`
      select wiki, sum(changes)::int as n from wiki_activity_minute group by wiki order by wiki`;
    const chartSums = async () =>
      await page.$$eval("#chart rect[data-wiki]", (rects) => {
        const sums: Record<string, number> = {};
        for (const r of rects) {
          const w = r.getAttribute("data-wiki")!;
          sums[w] = (sums[w] ?? 0) + Number(r.getAttribute("data-changes"));
        }
        return sums;
      });
    assert.deepEqual(
      await chartSums(),
      Object.fromEntries(expected.map((e) => [e.wiki, e.n])),
    );
    assert.equal(await page.textContent("#mode"), "replay");
    const total = expected.reduce((n, e) => n + e.n, 0);
    assert.equal(await page.textContent("#s-changes"), String(total));
    assert.equal(await page.textContent("#s-new"), "1");
    const [who] = await db.sql<
      { bots: number; anon: number }[]
    >`select count(*) filter (where is_bot)::int as bots,
        count(*) filter (where is_anon)::int as anon from wiki_recent_changes`;
    assert.equal(
      await page.textContent("#who-text"),
      `bots ${who!.bots} · humans ${
        total - who!.bots - who!.anon
      } · anonymous ${who!.anon}`,
    );

    // Tables: the most-edited page (its title is text, not markup) and the new page.
    const top = await page.$$eval(
      "[data-testid=top-pages] tbody tr",
      (trs) =>
        trs.map((tr) =>
          [...tr.querySelectorAll("td")].map((td) => td.textContent)
        ),
    );
    assert.deepEqual(top[0]!.slice(0, 3), [
      "enwiki",
      "Most <b>edited</b> page",
      "6",
    ]);
    const fresh = await page.$$eval(
      "[data-testid=new-pages] tbody tr",
      (trs) =>
        trs.map((tr) =>
          [...tr.querySelectorAll("td")].map((td) => td.textContent)
        ),
    );
    assert.deepEqual(fresh.map((r) => r.slice(1)), [[
      "dewiki",
      "Neue Seite",
      "Autorin",
    ]]);
    assert.equal(await page.textContent("#s-lag"), "0");
    assert.equal(await page.textContent("#s-dlq"), "0");

    // Live update: new rows in a later minute, for a new wiki, appear without a reload.
    const generation = Number(
      await page.getAttribute("#updated", "data-generation"),
    );
    const later = new Date(base + 31 * 60_000).toISOString();
    await sink.write([
      row("frwiki", later),
      row("frwiki", later, { is_bot: true }),
      row("frwiki", later, {
        change_type: "new",
        is_new: true,
        title: "Nouvelle page",
        user_name: "Autrice",
        old_len: null,
      }),
    ]);
    await page.waitForSelector('#chart rect[data-wiki="frwiki"]');
    assert.ok(
      Number(await page.getAttribute("#updated", "data-generation")) >
        generation,
    );
    assert.equal((await chartSums()).frwiki, 3);
    assert.equal(await page.textContent("#s-changes"), String(total + 3));
    assert.equal(await page.textContent("#s-new"), "2");
    await eventually(async () =>
      (await page.textContent(
        "[data-testid=new-pages] tbody tr td:nth-child(3)",
      )) ===
        "Nouvelle page"
    );
    await checkKeySourcesAndPicker(page, chartSums, total);
    assert.deepEqual(errors, []);

    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL("dashboard.png", ARTIFACTS).pathname,
      fullPage: true,
    });
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    controller.abort();
    await server.finished;
    await consumer.close();
  }
});

/** The colour key of the who bar, the Sources table and the window picker. */
async function checkKeySourcesAndPicker(
  page: Page,
  chartSums: () => Promise<Record<string, number>>,
  total: number,
): Promise<void> {
  // The bots/humans/anonymous bar has a colour key, in the bar's colours.
  const key = await page.$$eval(
    "[data-testid=who-key] span",
    (spans) =>
      spans.map((s) => [
        s.getAttribute("data-kind"),
        (s.querySelector("i") as unknown as { style: { background: string } })
          .style.background,
      ]),
  );
  const bar = await page.$$eval(
    "[data-testid=who] span",
    (spans) =>
      Object.fromEntries(
        spans.map((s) => [s.getAttribute("data-kind"), s.style.background]),
      ),
  );
  assert.deepEqual(key.map((k) => k[0]), ["bots", "humans", "anonymous"]);
  for (const [kind, colour] of key) assert.equal(bar[kind!], colour);

  // Each wiki's source status.
  const sources = await page.$$eval(
    "[data-testid=sources] tbody tr",
    (trs) =>
      trs.map((tr) =>
        [...tr.querySelectorAll("td")].map((td) => td.textContent)
      ),
  );
  assert.deepEqual(sources, [[
    "en.wikipedia.org",
    "retrying",
    "never",
    "2024-04-26 12:00:00 UpstreamError: Cannot reach the wiki",
    "8 s",
  ]]);

  // The window picker: a replay shows all of it by default; 1 h, 24 h, 7 d on a click.
  const pressed = () =>
    page.getAttribute("[data-window][aria-pressed=true]", "data-window");
  assert.equal(await pressed(), "all");
  await page.click("[data-window='1h']");
  await eventually(async () => (await pressed()) === "1h");
  assert.match(
    (await page.textContent("#window"))!,
    /last 1 h up to the newest event/,
  );
  assert.equal((await chartSums()).frwiki, 3);
  await page.click("[data-window='7d']");
  await eventually(async () => (await pressed()) === "7d");
  assert.equal(await page.textContent("#s-changes"), String(total + 3));
  await page.click("[data-window='all']");
  await eventually(async () => (await pressed()) === "all");
}
