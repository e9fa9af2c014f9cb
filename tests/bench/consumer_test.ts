import assert from "node:assert/strict";
import { pollDelay } from "../../bench/consumer.ts";

Deno.test("pollDelay() looks often around the first and the last commit, seldom in between", () => {
  // Before the first commit, and before a rate is known.
  assert.equal(pollDelay(undefined, 0, 150_000, 1000), 20);
  assert.equal(pollDelay({ at: 1000, n: 900 }, 900, 149_100, 1000), 20);
  // 10 rows a ms: 100k left take 10 s, so half a second (the most).
  assert.equal(pollDelay({ at: 0, n: 0 }, 10_000, 100_000, 1000), 500);
  // 2000 left take 200 ms: a quarter of that.
  assert.equal(pollDelay({ at: 0, n: 0 }, 10_000, 2000, 1000), 50);
  // Near the end, and done.
  assert.equal(pollDelay({ at: 0, n: 0 }, 10_000, 100, 1000), 20);
  assert.equal(pollDelay({ at: 0, n: 0 }, 10_000, 0, 1000), 20);
});
