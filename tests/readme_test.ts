/** The README's configuration table and the zod schema stay in step: same variables, same defaults. */
import assert from "node:assert/strict";
import { describeConfig } from "../lib/schemas/config.ts";

const README = new URL("../README.md", import.meta.url);

/** The rows `| `NAME` | default | meaning |` of the README's Configuration table. */
function configRows(): Map<string, string> {
  const text = Deno.readTextFileSync(README);
  const section = text.split(/^## /m).find((s) =>
    s.startsWith("Configuration")
  );
  assert.ok(section, "README has a Configuration section");
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]*) \|/gm)) {
    rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

Deno.test("README configuration table lists exactly the schema's variables", () => {
  const rows = configRows();
  const schema = describeConfig().map((d) => d.name as string);
  assert.deepEqual(
    {
      missingFromReadme: schema.filter((k) => !rows.has(k)),
      notInSchema: [...rows.keys()].filter((k) => !schema.includes(k)),
    },
    { missingFromReadme: [], notInSchema: [] },
  );
});

Deno.test("README configuration table shows the schema's defaults", () => {
  const rows = configRows();
  for (const doc of describeConfig()) {
    const shown = rows.get(doc.name) ?? "";
    const literal = /^`([^`]*)`$/.exec(shown)?.[1];
    if (doc.default === "unset") {
      assert.match(shown, /^\(?unset\b/, `${doc.name} has no default`);
    } else {
      assert.equal(literal, doc.default, `${doc.name} default`);
    }
  }
});
