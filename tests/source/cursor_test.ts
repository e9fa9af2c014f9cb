import assert from "node:assert/strict";
import fc from "fast-check";
import { Cursor } from "../../lib/source/cursor.ts";
import { IdRanges } from "../../lib/source/_id_ranges.ts";
import { loadStreamAsApiWiki } from "../fakes/fake_mediawiki.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const T = Date.parse("2024-04-26T00:00:00Z");
const FAR = T + 86_400_000;
const keep = (keepMs: number, wikiNowMs = FAR) => ({ keepMs, wikiNowMs });

Deno.test("Cursor.startFor() re-reads the overlap but never before the floor", () => {
  const c = Cursor.at("2024-04-26T00:00:00Z");
  assert.equal(c.startFor(60_000), "2024-04-26T00:00:00.000Z");
  const moved = c.advance(
    [{ rcid: "1", timestampMs: T + 600_000 }],
    keep(60_000),
  );
  assert.equal(moved.startFor(60_000), "2024-04-26T00:09:00.000Z");
});

Deno.test("Cursor.advance() remembers rows inside the window and forgets those no window reads", () => {
  let c = Cursor.at("2024-04-26T00:00:00Z");
  c = c.advance([{ rcid: "1", timestampMs: T + 1000 }, {
    rcid: "2",
    timestampMs: T + 50_000,
  }], keep(60_000));
  assert.ok(c.has("1") && c.has("2"));
  c = c.advance([{ rcid: "3", timestampMs: T + 900_000 }], keep(60_000));
  assert.ok(!c.has("1") && !c.has("2"), "older than last - window");
  assert.ok(c.has("3"));
  assert.equal(c.lastMs, T + 900_000);
});

Deno.test("Cursor.advance() keeps a late row's rcid while its time is inside the window", () => {
  let c = Cursor.at("2024-04-26T00:00:00Z").advance([{
    rcid: "500",
    timestampMs: T + 3_600_000,
  }], keep(21_600_000));
  // A categorize row written by the job queue: high rcid, the revision's older time.
  c = c.advance([{ rcid: "900", timestampMs: T + 60_000 }], keep(21_600_000));
  assert.equal(c.lastMs, T + 3_600_000, "a late row never moves it back");
  assert.ok(c.has("500") && c.has("900"));
});

Deno.test("Cursor.advance() never moves past the wiki's clock", () => {
  const c = Cursor.at("2024-04-26T00:00:00Z").advance([{
    rcid: "7",
    timestampMs: T + 3_600_000,
  }], keep(60_000, T + 5000));
  assert.equal(c.lastMs, T + 5000);
  assert.ok(c.has("7"));
});

Deno.test("Cursor round-trips through its checkpoint, and restores the first form", () => {
  const c = Cursor.at("2024-04-26T00:00:00Z").advance([
    { rcid: "7", timestampMs: T + 2000 },
    { rcid: "9", timestampMs: T + 2000 },
  ], keep(60_000)).reconciled(T + 3000);
  const v = c.toCheckpoint("enwiki", "en.wikipedia.org", new Date(T));
  const back = Cursor.fromCheckpoint(JSON.parse(JSON.stringify(v)));
  assert.equal(back.lastMs, c.lastMs);
  assert.equal(back.floorMs, c.floorMs);
  assert.equal(back.reconciledMs, T + 3000);
  assert.ok(back.has("7") && back.has("9") && !back.has("8"));
  const v1 = Cursor.fromCheckpoint({
    v: 1,
    wiki: "enwiki",
    host: "en.wikipedia.org",
    floor: "2024-04-26T00:00:00Z",
    last_ts: "2024-04-26T00:00:02Z",
    seen: [["7", T / 1000 + 2]],
    updated_at: "2024-04-26T00:00:02Z",
  });
  assert.ok(v1.has("7") && !v1.has("8"));
});

Deno.test("IdRanges encodes and decodes ranges exactly", () => {
  const r = new IdRanges();
  for (const id of [5n, 6n, 7n, 9n, 2n ** 62n, 2n ** 62n + 1n, 1n]) r.add(id);
  assert.equal(r.rangeCount, 4);
  const back = IdRanges.decode(r.encode());
  assert.equal(back.encode(), r.encode());
  for (const id of [1n, 5n, 7n, 9n, 2n ** 62n + 1n]) assert.ok(back.has(id));
  for (const id of [2n, 8n, 10n]) assert.ok(!back.has(id));
  assert.throws(() => IdRanges.decode("5,?"), RangeError);
});

/** The text form by its definition: each range's gap from the previous end, then +length. */
function rangesText(ids: Iterable<bigint>): string {
  const sorted = [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ranges: [bigint, bigint][] = [];
  for (const id of sorted) {
    const last = ranges.at(-1);
    if (last && last[1] + 1n === id) last[1] = id;
    else ranges.push([id, id]);
  }
  let prev = 0n;
  return ranges.map(([s, e]) => {
    const item = (s - prev).toString(36) +
      (s === e ? "" : `+${(e - s).toString(36)}`);
    prev = e;
    return item;
  }).join(",");
}

Deno.test("IdRanges.encode() gives the same text for safe and 64-bit ids, after every change", () => {
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  const r = new IdRanges();
  const ids: bigint[] = [];
  for (
    const id of [
      7n,
      8n,
      3n,
      safe - 1n,
      safe,
      10n,
      safe + 1n,
      2n ** 63n - 1n,
      9n,
    ]
  ) {
    r.add(id);
    ids.push(id);
    assert.equal(r.encode(), rangesText(ids), `after adding ${id}`);
  }
  r.dropBelow(safe);
  assert.equal(r.encode(), rangesText(ids.filter((id) => id >= safe)));
  const copy = r.clone();
  copy.add(1n);
  assert.equal(r.encode(), rangesText(ids.filter((id) => id >= safe)));
  assert.equal(
    copy.encode(),
    rangesText([1n, ...ids.filter((id) => id >= safe)]),
  );
  r.clear();
  assert.equal(r.encode(), "");
});

Deno.test("IdRanges.encode() stays exact through any sequence of changes (its items are cached)", () => {
  const safe = BigInt(Number.MAX_SAFE_INTEGER);
  const id = fc.oneof(
    fc.bigInt({ min: 0n, max: 60n }),
    fc.bigInt({ min: safe - 8n, max: safe + 8n }),
  );
  const op = fc.oneof(
    { weight: 8, arbitrary: id.map((v) => ({ add: v })) },
    { weight: 1, arbitrary: id.map((v) => ({ dropBelow: v })) },
    { weight: 1, arbitrary: fc.constant({ clone: true }) },
    { weight: 1, arbitrary: fc.constant({ decode: true }) },
    { weight: 1, arbitrary: fc.constant({ encode: true }) },
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      let r = new IdRanges();
      let held = new Set<bigint>();
      for (const o of ops) {
        if ("add" in o) {
          r.add(o.add);
          held.add(o.add);
        } else if ("dropBelow" in o) {
          r.dropBelow(o.dropBelow);
          held = new Set([...held].filter((v) => v >= o.dropBelow));
        } else if ("clone" in o) {
          const before = r.encode();
          const copy = r.clone();
          r.add(0n); // the original changes; the copy must not
          assert.equal(copy.encode(), before);
          r = copy;
        } else if ("decode" in o) r = IdRanges.decode(r.encode());
        else r.encode();
        assert.equal(r.encode(), rangesText(held));
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("the checkpoint stays under 64 KiB with 6 h of rcids at Wikidata's rate", () => {
  // The recorded 2018 Wikidata capture (3,818 rows, 12/s, with its real rcid gaps) repeated with
  // shifted rcids and times until it covers 6 h at 15 rows/s.
  const rows = loadStreamAsApiWiki().rows.map((r) => ({
    id: BigInt(String(r.rcid)),
    ts: Date.parse(String(r.timestamp)),
  }));
  const low = rows.reduce((m, r) => r.id < m ? r.id : m, rows[0]!.id);
  const high = rows.reduce((m, r) => r.id > m ? r.id : m, rows[0]!.id);
  const t0 = Math.min(...rows.map((r) => r.ts));
  const period = Math.round(rows.length / 15 * 1000);
  const copies = Math.ceil(21_600_000 / period);
  let c = Cursor.at(new Date(t0).toISOString());
  let largest = 0;
  for (let k = 0; k < copies; k++) {
    const page = rows.map((r) => ({
      rcid: String(r.id + BigInt(k) * (high - low + 1n)),
      timestampMs: r.ts + k * period,
    }));
    c = c.advance(page, keep(21_600_000, t0 + (k + 1) * period + 60_000));
    const size =
      JSON.stringify(c.toCheckpoint("wikidatawiki", "www.wikidata.org")).length;
    largest = Math.max(largest, size);
  }
  assert.ok(c.seenCount >= 15 * 21_600 * 0.95, `remembers ${c.seenCount}`);
  assert.ok(largest < 64 * 1024, `largest checkpoint ${largest} bytes`);
  // Every id of the last 6 h is still remembered.
  const k = copies - 1;
  assert.ok(c.has(String(rows[0]!.id + BigInt(k) * (high - low + 1n))));
});
