/** Two real producer processes with one transactional id: the older one stops for good. */
import assert from "node:assert/strict";
import {
  loadStreamAsApiWiki,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";
import { eventually, testConfig } from "../_helpers.ts";
import { publishedRcids } from "../_kafka.ts";
import { envOf, spawnProducer } from "./_producer_process.ts";

Deno.test("a producer fenced by a newer one with its transactional id exits 1 naming the cause", async () => {
  const wiki = loadStreamAsApiWiki();
  const visible = new Map([[wiki.host, 1000]]);
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
  const older = await spawnProducer(envOf(config), args);
  await eventually(() => older.state.pages >= 10, 60_000, 20);

  const newer = await spawnProducer(envOf(config), args);
  try {
    await eventually(
      () => newer.state.lines.some((l) => l.includes('"msg":"polling"')),
      60_000,
      20,
    );
    visible.set(wiki.host, 2000); // both now have rows to publish
    const status = await Promise.race([
      older.child.status,
      new Promise<"still running">((r) =>
        setTimeout(() => r("still running"), 30_000)
      ),
    ]);
    assert.notEqual(status, "still running", "the fenced producer kept going");
    await older.pumped;
    assert.equal((status as Deno.CommandStatus).code, 1);
    const failed = older.state.lines.find((l) =>
      l.includes('"msg":"producer failed"')
    );
    assert.ok(failed, older.state.lines.slice(-5).join("\n"));
    assert.match(failed, /FencedError/);

    // The newer producer is untouched and carries on alone.
    visible.set(wiki.host, wiki.rows.length);
    await eventually(
      async () => (await publishedRcids(config)).size === wiki.rows.length,
      60_000,
      500,
    );
    assert.ok(
      !newer.state.lines.some((l) => l.includes("FencedError")),
      "the newer producer was fenced back",
    );
  } finally {
    for (const [p, sig] of [[older, "SIGKILL"], [newer, "SIGTERM"]] as const) {
      try {
        p.child.kill(sig);
      } catch { /* already exited */ }
    }
    await newer.child.status;
    await newer.pumped;
  }
  const counts = await publishedRcids(config);
  const repeated = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(repeated, []);
});
