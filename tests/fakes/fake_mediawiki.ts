/**
 * @module A fake MediaWiki Action API that replays recorded `list=recentchanges` rows (from
 * tests/fixtures/wikimedia) with real continuation semantics, a reveal schedule (rows become
 * visible over time) and injectable faults. Also a demo server: `deno task fake-wiki [--port N]`.
 */

/** A recorded wiki: its identity and rows. */
export interface RecordedWiki {
  host: string;
  wikiid: string;
  servername: string;
  rows: Record<string, unknown>[];
}

/** Faults the server can inject, one per request, in order. */
export type Fault =
  | "maxlag"
  | "429"
  | "503html"
  | "timeout"
  | "truncated"
  | "garbage"
  | "badrow";

/** Options for {@linkcode startFakeMediaWiki}. */
export interface FakeOptions {
  wikis: RecordedWiki[];
  /** Rows per page (MediaWiki's `rclimit=max` is 500 for anonymous clients). */
  pageSize?: number;
  port?: number;
  /** How many rows of each wiki are visible; all by default. Change it at any time. */
  visible?: Map<string, number>;
  /** Faults to inject on the next recentchanges requests, per host. */
  faults?: Map<string, Fault[]>;
  /** Requires this User-Agent prefix; other agents get 403 like Wikimedia does. */
  requireUserAgent?: boolean;
  /** The wiki's clock (`curtimestamp`), epoch ms; the local clock by default. */
  clock?: () => number;
}

/** A running fake server. */
export interface FakeMediaWiki extends AsyncDisposable {
  /** The MEDIAWIKI_API_URL template pointing here. */
  urlTemplate: string;
  port: number;
  requests: URL[];
  visible: Map<string, number>;
  faults: Map<string, Fault[]>;
  /** rcids (as strings) held back per host even when inside `visible`: rows that show up late. */
  hidden: Map<string, Set<string>>;
  /** Per host: rows older than this ISO time are purged (as `$wgRCMaxAge` does). */
  purgedBefore: Map<string, string>;
  close(): Promise<void>;
}

const FIXTURES = new URL("../fixtures/wikimedia/", import.meta.url);

/** Loads every recorded Action API fixture, grouped by wiki, in (timestamp, rcid) order. */
export function loadRecordedWikis(): RecordedWiki[] {
  const read = (name: string) =>
    JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES)));
  const wiremock = (name: string) =>
    JSON.parse(read(name).response.body).query.recentchanges;
  const wikis: RecordedWiki[] = [
    {
      host: "lv.wikipedia.org",
      wikiid: "lvwiki",
      servername: "lv.wikipedia.org",
      rows: read(
        "action_api_lvwiki_2020-04_recentchanges_fv2_oresscores_continue.json",
      ).query.recentchanges,
    },
    {
      host: "en.wikipedia.org",
      wikiid: "enwiki",
      servername: "en.wikipedia.org",
      rows: read(
        "action_api_enwiki_2013-2014_recentchanges_items_fv1_with_logs.json",
      ),
    },
    {
      host: "test.wikidata.org",
      wikiid: "testwikidatawiki",
      servername: "test.wikidata.org",
      rows: [
        ...wiremock(
          "action_api_testwikidata_2019-12_recentchanges_page1_wiremock.json",
        ),
        ...wiremock(
          "action_api_testwikidata_2019-12_recentchanges_page2_wiremock.json",
        ),
      ],
    },
    {
      host: "www.wikidata.org",
      wikiid: "wikidatawiki",
      servername: "www.wikidata.org",
      rows: [
        ...read(
          "action_api_wikidatawiki_2017-11-26_recentchanges_fv1_continue.json",
        ).query.recentchanges,
        ...wiremock(
          "action_api_testwikidata_2020-01_recentchanges_after_429_wiremock.json",
        ),
      ],
    },
  ];
  for (const w of wikis) w.rows = dedupe(w.rows).sort(compareRows);
  return wikis;
}

/**
 * The 2018 Wikidata EventStreams capture projected onto Action API rows (fv2 field names), in
 * the order the events arrived: rcids and timestamps go backwards there, as rows become visible
 * out of order in the API. Log events with `id: null` are not RC rows and are left out. Only
 * field names change; every value is the recorded one.
 */
export function loadStreamAsApiWiki(): RecordedWiki {
  const text = Deno.readTextFileSync(
    new URL(
      "eventstreams_wikidatawiki_2018-03-07_quickstatements_batch.jsonl",
      FIXTURES,
    ),
  );
  const rows: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    if (e.id === null || e.id === undefined) continue;
    const row: Record<string, unknown> = {
      type: e.type,
      ns: e.namespace,
      title: e.title,
      rcid: e.id,
      revid: e.revision?.new ?? 0,
      old_revid: e.revision?.old ?? 0,
      user: e.user,
      bot: e.bot,
      new: e.type === "new",
      minor: e.minor ?? false,
      oldlen: e.length?.old ?? 0,
      newlen: e.length?.new ?? 0,
      timestamp: new Date(e.timestamp * 1000).toISOString().replace(
        ".000Z",
        "Z",
      ),
      comment: e.comment,
    };
    if (e.type === "log") {
      Object.assign(row, {
        logtype: e.log_type,
        logaction: e.log_action,
        logparams: e.log_params,
      });
    }
    rows.push(row);
  }
  return {
    host: "www.wikidata.org",
    wikiid: "wikidatawiki",
    servername: "www.wikidata.org",
    rows,
  };
}

/** Starts the server on 127.0.0.1 (a free port unless given). */
export function startFakeMediaWiki(options: FakeOptions): FakeMediaWiki {
  const pageSize = options.pageSize ?? 500;
  const visible = options.visible ??
    new Map(options.wikis.map((w) => [w.host, w.rows.length]));
  const faults = options.faults ?? new Map<string, Fault[]>();
  const requests: URL[] = [];
  const hidden = new Map<string, Set<string>>();
  const purgedBefore = new Map<string, string>();
  const clock = options.clock ?? Date.now;
  const byHost = new Map(options.wikis.map((w) => [w.host, w]));
  const pending = new Set<() => void>();

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    requests.push(url);
    const host = url.pathname.split("/")[1] ?? "";
    const wiki = byHost.get(host);
    if (!wiki || !url.pathname.endsWith("/w/api.php")) {
      return new Response("Not found", { status: 404 });
    }
    if (
      options.requireUserAgent &&
      !/^\S+\/\S+ \(.+\)/.test(req.headers.get("user-agent") ?? "")
    ) {
      return new Response("<html><body>Please set a user-agent</body></html>", {
        status: 403,
        headers: { "content-type": "text/html" },
      });
    }
    const p = url.searchParams;
    const now = new Date(clock()).toISOString().replace(/\.\d+Z$/, "Z");
    if (p.get("meta") === "siteinfo") {
      return json({
        batchcomplete: true,
        curtimestamp: now,
        query: {
          general: {
            wikiid: wiki.wikiid,
            servername: wiki.servername,
            sitename: wiki.wikiid,
          },
        },
      });
    }
    if (p.get("list") !== "recentchanges") {
      return json({ error: { code: "badvalue", info: "Unsupported request" } });
    }
    const fault = faults.get(host)?.shift();
    if (fault) {
      const injected = await inject(fault, pending);
      if (injected) return injected;
    }
    const purged = purgedBefore.get(host);
    const start = Math.max(
      p.get("rcstart") ? Date.parse(p.get("rcstart")!) : -Infinity,
      purged ? Date.parse(purged) : -Infinity,
    );
    const limit = Math.min(
      pageSize,
      /^\d+$/.test(p.get("rclimit") ?? "")
        ? Number(p.get("rclimit"))
        : pageSize,
    );
    const end = p.get("rcend") ? Date.parse(p.get("rcend")!) : Infinity;
    let from: { ts: number; id: bigint } | undefined;
    const cont = p.get("rccontinue");
    if (cont) {
      const m = /^(\d{14})\|(\d+)$/.exec(cont);
      if (!m) {
        return json({
          error: {
            code: "badcontinue",
            info:
              "Invalid continue param. You should pass the original value returned by the previous query.",
          },
        });
      }
      from = { ts: Date.parse(mwToIso(m[1]!)), id: BigInt(m[2]!) };
    }
    const held = hidden.get(host);
    const shown = wiki.rows.slice(0, visible.get(host) ?? wiki.rows.length)
      .filter((r) => !held?.has(String(r.rcid)))
      .sort(compareRows);
    const matching = shown.filter((r) => {
      const { ts, id } = rowKey(r);
      if (ts < start || ts > end) return false;
      if (from && (ts < from.ts || (ts === from.ts && id < from.id))) {
        return false;
      }
      return true;
    });
    const page = matching.slice(0, limit);
    const body: Record<string, unknown> = {
      batchcomplete: true,
      curtimestamp: now,
      query: { recentchanges: page },
    };
    const next = matching[limit];
    if (next) {
      body.continue = {
        rccontinue: `${isoToMw(String(next.timestamp))}|${next.rcid}`,
        continue: "-||",
      };
    }
    if (fault === "badrow") {
      (body.query as { recentchanges: unknown[] }).recentchanges = [{
        type: "edit",
        title: "Broken row",
        timestamp: "not a time",
      }, ...page];
    }
    return json(body);
  };

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    onListen() {},
  }, handler);
  const port = server.addr.port;
  const close = async () => {
    for (const release of pending) release();
    await server.shutdown();
  };
  return {
    urlTemplate: `http://127.0.0.1:${port}/{host}/w/api.php`,
    port,
    requests,
    visible,
    faults,
    hidden,
    purgedBefore,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The response of an injected fault (undefined for `badrow`, which alters a real page). */
export async function inject(
  fault: Fault,
  pending: Set<() => void>,
): Promise<Response | undefined> {
  switch (fault) {
    case "maxlag":
      // The real body and headers of a maxlag refusal: HTTP 200, Retry-After, X-Database-Lag.
      return json(
        {
          error: {
            code: "maxlag",
            info: "Waiting for 10.64.48.174: 2.942427 seconds lagged.",
            host: "10.64.48.174",
            lag: 2.942427,
            type: "db",
          },
          servedby: "mw-api-ext",
        },
        200,
        { "retry-after": "1", "x-database-lag": "2" },
      );
    case "429":
      return new Response("Too many requests", {
        status: 429,
        headers: { "retry-after": "1" },
      });
    case "503html":
      return new Response(
        "<!DOCTYPE html><html><head><title>Wikimedia Error</title></head><body>Our servers are currently under maintenance or experiencing a technical problem.</body></html>",
        { status: 503, headers: { "content-type": "text/html" } },
      );
    case "timeout": {
      const { promise, resolve } = Promise.withResolvers<void>();
      const t = setTimeout(resolve, 5000);
      const release = () => {
        clearTimeout(t);
        resolve();
      };
      pending.add(release);
      await promise;
      pending.delete(release);
      return new Response("late", { status: 504 });
    }
    case "truncated":
      return new Response(
        '{"batchcomplete":true,"query":{"recentchanges":[{"type":"edit","ns":0,"tit',
        { status: 200, headers: { "content-type": "application/json" } },
      );
    case "garbage":
      return new Response("\u0000\u0001garbage{{{", {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    case "badrow":
      return undefined;
  }
}

/** A JSON response, as the API sends it. */
export function json(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** (time, rcid) of each row, parsed once (sorting a few hundred thousand rows per request). */
const ROW_KEYS = new WeakMap<object, { ts: number; id: bigint }>();

function rowKey(r: Record<string, unknown>): { ts: number; id: bigint } {
  let k = ROW_KEYS.get(r);
  if (!k) {
    k = { ts: Date.parse(String(r.timestamp)), id: BigInt(String(r.rcid)) };
    ROW_KEYS.set(r, k);
  }
  return k;
}

function compareRows(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): number {
  const ka = rowKey(a), kb = rowKey(b);
  const d = ka.ts - kb.ts;
  if (d !== 0) return d;
  return ka.id < kb.id ? -1 : ka.id > kb.id ? 1 : 0;
}

function dedupe(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = String(r.rcid);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** ISO 8601 to MediaWiki's 14-digit timestamp (as in `rccontinue`). */
export function isoToMw(iso: string): string {
  return iso.replace(/[-:TZ]/g, "").slice(0, 14);
}

/** The `deno task fake-wiki --help` text. */
export const FAKE_WIKI_USAGE = `Usage: ./wikistream fake-wiki [--port N]

Serves the recorded Wikimedia responses of tests/fixtures/wikimedia/ as a local fake Action API
and prints the MEDIAWIKI_API_URL and WIKIS to use (see docs/offline.md).

Flags:
  --port N    Port to listen on (default 8900)
  -h, --help  Print this help and exit
`;

/** MediaWiki's 14-digit timestamp to ISO 8601. */
export function mwToIso(mw: string): string {
  return `${mw.slice(0, 4)}-${mw.slice(4, 6)}-${mw.slice(6, 8)}T${
    mw.slice(8, 10)
  }:${mw.slice(10, 12)}:${mw.slice(12, 14)}Z`;
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    Deno.stdout.writeSync(new TextEncoder().encode(FAKE_WIKI_USAGE));
    Deno.exit(0);
  }
  const at = Deno.args.indexOf("--port");
  const port = at >= 0 ? Number(Deno.args[at + 1]) : 8900;
  const server = startFakeMediaWiki({ wikis: loadRecordedWikis(), port });
  // deno-lint-ignore no-console
  console.log(
    `export MEDIAWIKI_API_URL=${server.urlTemplate}\nexport WIKIS=${
      loadRecordedWikis().map((w) => w.host).join(",")
    }`,
  );
}
