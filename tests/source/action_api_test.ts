import assert from "node:assert/strict";
import {
  createWikimediaClient,
  parseRetryAfter,
  RC_PROPS,
} from "../../lib/source/action_api.ts";
import { UpstreamError } from "../../lib/core/errors.ts";
import {
  loadRecordedWikis,
  startFakeMediaWiki,
} from "../fakes/fake_mediawiki.ts";

const UA =
  "wikistream-test/0.1 (https://example.org/wikistream; tests@example.org)";
const FIXTURES = new URL("../fixtures/wikimedia/", import.meta.url);

function recordedPage(name: string) {
  const mapping = JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES)));
  return {
    url: new URL(mapping.request.url, "http://x"),
    body: JSON.parse(mapping.response.body),
  };
}

Deno.test("the recorded testwikidata pages continue inclusively at rccontinue", () => {
  const p1 = recordedPage(
    "action_api_testwikidata_2019-12_recentchanges_page1_wiremock.json",
  );
  const p2 = recordedPage(
    "action_api_testwikidata_2019-12_recentchanges_page2_wiremock.json",
  );
  assert.equal(p1.body.continue.rccontinue, "20191228153556|539189");
  const first = p2.body.query.recentchanges[0];
  assert.equal(first.rcid, 539189);
  assert.equal(first.timestamp, "2019-12-28T15:35:56Z");
  assert.equal(p2.url.searchParams.get("rcstart"), "2019-12-28T15:35:56Z");
});

Deno.test("fetchPage() follows continue across the recorded testwikidata page pair", async () => {
  const wiki = loadRecordedWikis().find((w) => w.host === "test.wikidata.org")!;
  await using fake = startFakeMediaWiki({ wikis: [wiki], pageSize: 15 });
  const client = createWikimediaClient({
    apiUrlTemplate: fake.urlTemplate,
    userAgent: UA,
    timeoutMs: 5000,
  });
  const p1 = recordedPage(
    "action_api_testwikidata_2019-12_recentchanges_page1_wiremock.json",
  );
  const p2 = recordedPage(
    "action_api_testwikidata_2019-12_recentchanges_page2_wiremock.json",
  );

  const page1 = await client.fetchPage("test.wikidata.org", {
    start: "2019-12-23T08:50:06.580Z",
  }, {});
  assert.deepEqual(page1.rows, p1.body.query.recentchanges);
  assert.deepEqual(page1.continue, p1.body.continue);
  const page2 = await client.fetchPage("test.wikidata.org", {
    start: "2019-12-23T08:50:06.580Z",
    continue: page1.continue,
  }, {});
  assert.deepEqual(page2.rows, p2.body.query.recentchanges);
  assert.equal(page2.continue, undefined);

  const req = fake.requests.at(-1)!;
  for (
    const [k, v] of Object.entries({
      formatversion: "2",
      rcdir: "newer",
      rclimit: "max",
      maxlag: "5",
      rcprop: RC_PROPS,
      rccontinue: "20191228153556|539189",
      continue: "-||",
    })
  ) {
    assert.equal(req.searchParams.get(k), v, k);
  }
});

Deno.test("siteInfo() resolves a host's database name", async () => {
  await using fake = startFakeMediaWiki({ wikis: loadRecordedWikis() });
  const client = createWikimediaClient({
    apiUrlTemplate: fake.urlTemplate,
    userAgent: UA,
    timeoutMs: 5000,
  });
  const info = await client.siteInfo("www.wikidata.org", {});
  assert.equal(info.wiki, "wikidatawiki");
  assert.equal(info.serverName, "www.wikidata.org");
});

Deno.test("fetchPage() classifies every injected fault", async (t) => {
  const wiki = loadRecordedWikis().find((w) => w.host === "lv.wikipedia.org")!;
  await using fake = startFakeMediaWiki({ wikis: [wiki] });
  const client = createWikimediaClient({
    apiUrlTemplate: fake.urlTemplate,
    userAgent: UA,
    timeoutMs: 1000,
  });
  const cases = [
    { fault: "maxlag", code: "maxlag", retriable: true, retryAfterMs: 5000 },
    { fault: "429", code: "http_429", retriable: true, retryAfterMs: 1000 },
    { fault: "503html", code: "http_503", retriable: true },
    { fault: "truncated", code: "invalid_json", retriable: true },
    { fault: "garbage", code: "invalid_json", retriable: true },
    { fault: "timeout", code: "timeout", retriable: true },
  ] as const;
  for (const c of cases) {
    await t.step(c.fault, async () => {
      fake.faults.set("lv.wikipedia.org", [c.fault]);
      const err = await client.fetchPage("lv.wikipedia.org", {
        start: "2020-01-01T00:00:00Z",
      }, {}).catch((e) => e);
      assert.ok(err instanceof UpstreamError, String(err));
      assert.equal(err.code, c.code);
      assert.equal(err.retriable, c.retriable);
      if ("retryAfterMs" in c) assert.equal(err.retryAfterMs, c.retryAfterMs);
    });
  }
  await t.step("badcontinue is not retriable", async () => {
    const err = await client.fetchPage("lv.wikipedia.org", {
      start: "2020-01-01T00:00:00Z",
      continue: { rccontinue: "bogus" },
    }, {}).catch((e) => e);
    assert.ok(err instanceof UpstreamError);
    assert.equal(err.code, "badcontinue");
    assert.equal(err.retriable, false);
  });
  await t.step("403 for a missing User-Agent", async () => {
    await using strict = startFakeMediaWiki({
      wikis: [wiki],
      requireUserAgent: true,
    });
    const bad = createWikimediaClient({
      apiUrlTemplate: strict.urlTemplate,
      userAgent: "deno",
      timeoutMs: 1000,
    });
    const err = await bad.siteInfo("lv.wikipedia.org", {}).catch((e) => e);
    assert.equal(err.status, 403);
    assert.equal(err.retriable, false);
    const good = createWikimediaClient({
      apiUrlTemplate: strict.urlTemplate,
      userAgent: UA,
      timeoutMs: 1000,
    });
    assert.equal((await good.siteInfo("lv.wikipedia.org", {})).wiki, "lvwiki");
  });
});

Deno.test("parseRetryAfter() reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("5"), 5000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2024-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Mon, 01 Jan 2024 00:00:10 GMT", now), 10_000);
});
