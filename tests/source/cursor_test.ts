import assert from "node:assert/strict";
import { Cursor } from "../../lib/source/cursor.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const T = Date.parse("2024-04-26T00:00:00Z");

Deno.test("Cursor.startFor() re-reads the overlap but never before the floor", () => {
  const c = Cursor.at("2024-04-26T00:00:00Z");
  assert.equal(c.startFor(60_000), "2024-04-26T00:00:00.000Z");
  const moved = c.advance([{ rcid: "1", timestampMs: T + 600_000 }], 60_000);
  assert.equal(moved.startFor(60_000), "2024-04-26T00:09:00.000Z");
});

Deno.test("Cursor.advance() remembers rows inside the overlap and forgets older ones", () => {
  let c = Cursor.at("2024-04-26T00:00:00Z");
  c = c.advance([{ rcid: "1", timestampMs: T + 1000 }, {
    rcid: "2",
    timestampMs: T + 50_000,
  }], 60_000);
  assert.ok(c.has("1") && c.has("2"));
  c = c.advance([{ rcid: "3", timestampMs: T + 100_000 }], 60_000);
  assert.ok(!c.has("1"), "older than last - overlap");
  assert.ok(c.has("2") && c.has("3"));
  assert.equal(c.lastMs, T + 100_000);
});

Deno.test("Cursor.advance() never moves backwards for late rows", () => {
  let c = Cursor.at("2024-04-26T00:00:00Z").advance([{
    rcid: "5",
    timestampMs: T + 10_000,
  }], 60_000);
  c = c.advance([{ rcid: "4", timestampMs: T + 8000 }], 60_000);
  assert.equal(c.lastMs, T + 10_000);
  assert.ok(c.has("4"));
});

Deno.test("Cursor.advance() bounds the seen-set", () => {
  const rows = Array.from(
    { length: 10 },
    (_, i) => ({ rcid: String(i), timestampMs: T + i }),
  );
  const c = Cursor.at("2024-04-26T00:00:00Z").advance(rows, 60_000, 4);
  assert.equal(c.seenCount, 4);
  assert.ok(c.has("9") && !c.has("0"));
});

Deno.test("Cursor round-trips through its checkpoint", () => {
  const c = Cursor.at("2024-04-26T00:00:00Z").advance([{
    rcid: "7",
    timestampMs: T + 2000,
  }], 60_000);
  const v = c.toCheckpoint("enwiki", "en.wikipedia.org", new Date(T));
  const back = Cursor.fromCheckpoint(JSON.parse(JSON.stringify(v)));
  assert.equal(back.lastMs, c.lastMs);
  assert.equal(back.floorMs, c.floorMs);
  assert.ok(back.has("7"));
});
