/**
 * @module A fake MediaWiki Action API for one wiki that serves k shifted copies of recorded rows
 * (copy k: rcid + k*1e10, timestamp + k days) without materialising them: the same continuation,
 * reveal-in-arrival-order and fault semantics as tests/fakes/fake_mediawiki.ts, at a million rows.
 */
import {
  type Fault,
  inject,
  isoToMw,
  json,
  mwToIso,
} from "../fakes/fake_mediawiki.ts";

/** Options for {@linkcode startScaledWiki}. */
export interface ScaledWikiOptions {
  host: string;
  wikiid: string;
  servername: string;
  /** The recorded rows in their arrival order. */
  base: Record<string, unknown>[];
  copies: number;
  /** Makes copy k of a row. */
  shift(row: Record<string, unknown>, k: number): Record<string, unknown>;
  pageSize: number;
}

/** A running scaled fake. */
export interface ScaledWiki {
  urlTemplate: string;
  /** Faults for the next recentchanges requests, in order. */
  faults: Fault[];
  /** Makes the first `n` rows (in arrival order over all copies) visible. */
  reveal(n: number): void;
  requests: number;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
const SHIFT = 10_000_000_000;

/** Starts the server on a free loopback port. */
export function startScaledWiki(options: ScaledWikiOptions): ScaledWiki {
  const n = options.base.length;
  // The base rows sorted by (timestamp, rcid), with each one's arrival index.
  const order = options.base.map((r, i) => ({
    r,
    i,
    ts: Date.parse(String(r.timestamp)),
    id: Number(r.rcid),
  })).sort((a, b) => a.ts - b.ts || a.id - b.id);
  const span = order[n - 1]!.ts - order[0]!.ts;
  if (span >= DAY_MS) throw new RangeError("Recorded rows span a day or more");
  const total = n * options.copies;
  const keyAt = (p: number) => {
    const k = Math.floor(p / n), o = order[p % n]!;
    return { ts: o.ts + k * DAY_MS, id: o.id + k * SHIFT, k, o };
  };
  let visible = 0;
  const pending = new Set<() => void>();
  const state = {
    faults: [] as Fault[],
    requests: 0,
  };

  const handler = async (req: Request): Promise<Response> => {
    state.requests++;
    const url = new URL(req.url);
    const p = url.searchParams;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (p.get("meta") === "siteinfo") {
      return json({
        batchcomplete: true,
        query: {
          general: {
            wikiid: options.wikiid,
            servername: options.servername,
          },
        },
      });
    }
    const fault = state.faults.shift();
    if (fault) {
      const r = await inject(fault, pending);
      if (r) return r;
    }
    const start = p.get("rcstart") ? Date.parse(p.get("rcstart")!) : -Infinity;
    const end = p.get("rcend") ? Date.parse(p.get("rcend")!) : Infinity;
    let from = { ts: start, id: -Infinity };
    const cont = p.get("rccontinue");
    if (cont) {
      const m = /^(\d{14})\|(\d+)$/.exec(cont);
      if (!m) return json({ error: { code: "badcontinue", info: "Invalid" } });
      const c = { ts: Date.parse(mwToIso(m[1]!)), id: Number(m[2]!) };
      if (c.ts > from.ts || (c.ts === from.ts)) from = c;
    }
    // First sorted position at or after `from`.
    let lo = 0, hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const k = keyAt(mid);
      if (k.ts < from.ts || (k.ts === from.ts && k.id < from.id)) lo = mid + 1;
      else hi = mid;
    }
    const lastCopy = Math.floor((visible - 1) / n);
    const page: Record<string, unknown>[] = [];
    let next: { ts: number; id: number } | undefined;
    for (let pos = lo; pos < total; pos++) {
      const k = keyAt(pos);
      if (k.k > lastCopy || k.ts > end) break;
      if (k.k * n + k.o.i >= visible) continue;
      if (page.length === options.pageSize) {
        next = k;
        break;
      }
      page.push(options.shift(k.o.r, k.k));
    }
    const body: Record<string, unknown> = {
      batchcomplete: true,
      curtimestamp: now,
      query: { recentchanges: page },
    };
    if (next) {
      body.continue = {
        rccontinue: `${isoToMw(new Date(next.ts).toISOString())}|${next.id}`,
        continue: "-||",
      };
    }
    return json(body);
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  return {
    urlTemplate: `http://127.0.0.1:${server.addr.port}/{host}/w/api.php`,
    get faults() {
      return state.faults;
    },
    get requests() {
      return state.requests;
    },
    reveal(count: number) {
      visible = Math.min(total, count);
    },
    async close() {
      for (const release of pending) release();
      await server.shutdown();
    },
  };
}
