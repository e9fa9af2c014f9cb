/** kill -9 of a real producer process mid-backfill and mid-tail: after restart nothing is missed. */
import assert from "node:assert/strict";
import {
  loadStreamAsApiWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { eventually, testConfig } from "../_helpers.ts";
import { envOf, spawnProducer } from "./_producer_process.ts";
import { publishedRcids } from "../_kafka.ts";
import { sleep } from "../../lib/core/retry.ts";

Deno.test("producer killed with -9 mid-backfill resumes from its checkpoint without gaps", async () => {
  const wiki = loadStreamAsApiWiki();
  await using fake = startFakeMediaWiki({ wikis: [wiki], pageSize: 40 });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
  });
  const args = [
    "--since",
    "2018-03-07T16:00:00Z",
    "--until",
    "2018-03-07T17:00:00Z",
  ];

  for (const pagesBeforeKill of [3, 25]) {
    const p = await spawnProducer(envOf(config), args);
    await eventually(() => p.state.pages >= pagesBeforeKill, 60_000, 20);
    p.child.kill("SIGKILL");
    await p.child.status;
    await p.pumped;
  }
  const last = await spawnProducer(envOf(config), args);
  const status = await last.child.status;
  await last.pumped;
  assert.equal(status.code, 0, last.state.lines.slice(-5).join("\n"));
  assert.ok(
    last.state.lines.some((l) => l.includes('"resumed":true')),
    "the last run resumed",
  );

  const counts = await publishedRcids(config);
  const missing = wiki.rows.map((r) => String(r.rcid)).filter((id) =>
    !counts.has(id)
  );
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual({ missing, repeated }, { missing: [], repeated: [] });
  assert.equal(counts.size, wiki.rows.length);
});

Deno.test("producer killed with -9 mid-tail picks up rows that appeared while it was down", async () => {
  const wiki = loadStreamAsApiWiki();
  const visible = new Map([[wiki.host, 500]]);
  await using fake = startFakeMediaWiki({
    wikis: [wiki],
    pageSize: 100,
    visible,
  });
  const config = testConfig({
    MEDIAWIKI_API_URL: fake.urlTemplate,
    WIKIS: wiki.host,
  });
  const args = ["--since", "2018-03-07T16:00:00Z"];

  const first = await spawnProducer(envOf(config), args);
  await eventually(() => first.state.pages >= 1, 60_000, 20);
  // Tail while more rows appear, then kill -9 in the middle of it.
  for (const n of [900, 1400, 2000]) {
    visible.set(wiki.host, n);
    await sleep(300);
  }
  first.child.kill("SIGKILL");
  await first.child.status;
  await first.pumped;
  visible.set(wiki.host, 3000); // appear while the producer is down

  const second = await spawnProducer(envOf(config), args);
  await eventually(() => second.state.pages >= 1, 60_000, 20);
  visible.set(wiki.host, wiki.rows.length);
  await eventually(
    async () => (await publishedRcids(config)).size === wiki.rows.length,
    60_000,
    500,
  );
  second.child.kill("SIGTERM");
  const status = await second.child.status;
  await second.pumped;
  assert.equal(status.code, 0, "SIGTERM is a clean stop");

  const counts = await publishedRcids(config);
  const missing = wiki.rows.map((r) => String(r.rcid)).filter((id) =>
    !counts.has(id)
  );
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual({ missing, repeated }, { missing: [], repeated: [] });
});
