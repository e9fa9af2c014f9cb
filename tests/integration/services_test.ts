/** scripts/services.sh as root: a checkout the `postgres` user cannot enter is named, with the fix. */
import assert from "node:assert/strict";
import { freePortRange } from "../_ports.ts";

const SCRIPT = new URL("../../scripts/services.sh", import.meta.url).pathname;

Deno.test({
  name:
    "services.sh (as root) names the folder postgres cannot enter and says what to do",
  // Only root runs PostgreSQL as another user; as anyone else there is nothing to check.
  ignore: Deno.uid() !== 0,
  async fn() {
    const closed = await Deno.makeTempDir();
    await Deno.chmod(closed, 0o700);
    try {
      const out = await new Deno.Command("bash", {
        args: [SCRIPT, "start-pg"],
        env: {
          WIKISTREAM_SERVICES_DIR: `${closed}/checkout/.cache/services`,
          WIKISTREAM_PG_PORT: String(freePortRange(1)),
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, /postgres system user .* cannot enter/);
      assert.ok(stderr.includes(`  ${closed} (drwx------`), stderr);
      assert.ok(stderr.includes(`chmod o+x '${closed}'`), stderr);
      assert.ok(stderr.includes("WIKISTREAM_SERVICES_DIR"), stderr);
    } finally {
      await Deno.remove(closed, { recursive: true });
    }
  },
});
