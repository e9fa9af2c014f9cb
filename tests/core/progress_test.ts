import assert from "node:assert/strict";
import { renderBar, terminalProgress } from "../../lib/core/progress.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

Deno.test("renderBar() draws the fraction", () => {
  assert.equal(renderBar(0.5, 10), "[#####.....]  50.0%");
  assert.equal(renderBar(2, 4), "[####] 100.0%");
});

Deno.test("terminalProgress() draws only on a terminal, averaging the wikis", () => {
  const written: string[] = [];
  const tty = {
    isTerminal: () => true,
    writeSync: (
      p: Uint8Array,
    ) => (written.push(new TextDecoder().decode(p)), p.length),
  };
  const report = terminalProgress(tty)!;
  report("enwiki", 0.2, "a");
  report("dewiki", 0.6, "b");
  assert.match(written.at(-1)!, /^\r\[#{12}\.{18}\] {2}40\.0% dewiki b/);
  report("enwiki", 1, "done");
  report("dewiki", 1, "done");
  assert.equal(written.at(-1), "\n");
  assert.equal(
    terminalProgress({ isTerminal: () => false, writeSync: () => 0 }),
    undefined,
  );
});
