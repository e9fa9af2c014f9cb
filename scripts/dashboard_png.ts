/**
 * @module `deno run -A scripts/dashboard_png.ts`: regenerates docs/dashboard.png from the offline
 * demo (docs/offline.md) exactly as a user runs it: the recorded Wikimedia data served by the
 * fake API, `start.ts --since 2013-01-01T00:00:00Z` into a fresh database and topic on the
 * local services (KAFKA_BROKERS, DATABASE_URL), and Debian's chromium for the picture.
 */
import { chromium } from "playwright-core";
import {
  loadRecordedWikis,
  startFakeMediaWiki,
} from "../tests/fakes/fake_mediawiki.ts";
import { freePortRange } from "../tests/_ports.ts";
import { freshDatabase } from "../tests/integration/_consumer_fixture.ts";

const ROOT = new URL("../", import.meta.url);
const brokers = Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092";
const appUrl = Deno.env.get("DATABASE_URL") ??
  "postgres://wikistream@127.0.0.1:15432/wiki_data";
const id = crypto.randomUUID().slice(0, 8);
const wikis = loadRecordedWikis();
const rows = wikis.reduce((n, w) => n + w.rows.length, 0);
await using fake = startFakeMediaWiki({ wikis });
// A database of its own whose public schema the app's role owns (dropped afterwards).
await using db = await freshDatabase(appUrl);
const port = freePortRange(1);
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "start.ts", "--since", "2013-01-01T00:00:00Z"],
  cwd: ROOT,
  env: {
    KAFKA_BROKERS: brokers,
    DATABASE_URL: db.url,
    KAFKA_TOPIC: `demo.${id}.rc`,
    KAFKA_GROUP_ID: `demo-${id}`,
    KAFKA_TRANSACTIONAL_ID: `demo-${id}`,
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wikis.map((w) => w.host).join(","),
    HTTP_PORT: String(port),
    LOG_FORMAT: "json",
    LOG_LEVEL: "warn",
  },
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
const url = `http://127.0.0.1:${port}/`;
try {
  await waitForRows(url, rows);
  const profile = await Deno.makeTempDir({ prefix: "wikistream-png-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    await page.goto(url);
    await page.waitForSelector("#chart rect[data-wiki]");
    await page.screenshot({
      path: new URL("docs/dashboard.png", ROOT).pathname,
      fullPage: true,
    });
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true });
  }
  say(`docs/dashboard.png: the offline demo's ${rows} recorded rows`);
} finally {
  child.kill("SIGTERM");
  await child.status;
}

/** Waits until the dashboard's default window holds every recorded row. */
async function waitForRows(url: string, want: number): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const body = await fetch(`${url}api/dashboard`).then(
      (r) => r.ok ? r.json() : null,
      () => null,
    );
    if (body?.data?.totals?.changes === want) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`The dashboard did not reach ${want} rows within 2 min`);
}

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(`${line}\n`));
}
