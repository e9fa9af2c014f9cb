/** sharedFor(): at most one call per interval, shared by every caller. */
import assert from "node:assert/strict";
import { sharedFor } from "../../lib/http/_shared.ts";

Deno.test.sanitizer({ ops: true, resources: true });

Deno.test("sharedFor() gives concurrent callers one call and the same answer", async () => {
  let calls = 0;
  let t = 0;
  const f = sharedFor(() => Promise.resolve(++calls), 5000, () => t);
  const answers = await Promise.all(Array.from({ length: 50 }, () => f()));
  assert.deepEqual(new Set(answers), new Set([1]));
  t = 4999;
  assert.equal(await f(), 1);
  t = 5000;
  assert.equal(await f(), 2);
  assert.equal(calls, 2);
});

Deno.test("sharedFor() shares a failure for the interval too, then tries again", async () => {
  let calls = 0;
  let t = 0;
  const f = sharedFor(
    () => {
      calls++;
      return calls === 1
        ? Promise.reject(new Error("down"))
        : Promise.resolve("up");
    },
    1000,
    () => t,
  );
  await assert.rejects(f(), /down/);
  await assert.rejects(f(), /down/);
  assert.equal(calls, 1);
  t = 1000;
  assert.equal(await f(), "up");
});
