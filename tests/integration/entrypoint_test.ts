/**
 * What the entrypoints check before they touch anything: `start.ts` validates config and flags
 * before it starts local services, and a busy HTTP port exits 2 with one line naming the port
 * and its variable before any connection (so a second consumer never joins the group).
 */
import assert from "node:assert/strict";
import { freePortRange } from "../_ports.ts";
import { taskArgs, taskOf } from "../_task.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs `entry` as its deno.json task does (scoped permissions). */
async function run(entry: string, args: string[], env: Record<string, string>) {
  const task = entry === "start.ts" ? "start" : taskOf(entry);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs(task, env)), ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

for (
  const [entry, variable] of [
    ["consumer.ts", "HTTP_PORT"],
    ["producer.ts", "PRODUCER_HTTP_PORT"],
  ] as const
) {
  Deno.test(`${entry} on a busy ${variable} exits 2 with one line naming it, before connecting`, async () => {
    using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (busy.addr as Deno.NetAddr).port;
    const { code, text } = await run(entry, [], {
      // Nothing listens there: a process that connected would log kafkajs errors.
      KAFKA_BROKERS: `127.0.0.1:${freePortRange(1)}`,
      DATABASE_URL: `postgres://nobody@127.0.0.1:${freePortRange(1)}/none`,
      HTTP_PORT: "0",
      PRODUCER_HTTP_PORT: "0",
      [variable]: String(port),
    });
    assert.equal(code, 2, text);
    const lines = text.trim().split("\n");
    assert.equal(lines.length, 1, text);
    const line = JSON.parse(lines[0]!);
    assert.equal(line.level, "error");
    assert.ok(line.msg.includes(`127.0.0.1:${port}`), line.msg);
    assert.ok(line.msg.includes(variable), line.msg);
  });
}

Deno.test("start.ts validates config and flags before it starts any service", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wikistream-start-" });
  const kafkaPort = freePortRange(2);
  const env = {
    WIKISTREAM_KAFKA_PORT: String(kafkaPort),
    WIKISTREAM_PG_PORT: String(freePortRange(1)),
    WIKISTREAM_SERVICES_DIR: `${dir}/services`,
    KAFKA_BROKERS: "",
    DATABASE_URL: "",
  };
  try {
    for (
      const [label, args, extra] of [
        ["POLL_INTERVAL_MS=abc", [], { POLL_INTERVAL_MS: "abc" }],
        ["--bogus", ["--bogus"], {}],
      ] as const
    ) {
      await t.step(label, async () => {
        const { code, text } = await run("start.ts", [...args], {
          ...env,
          ...extra,
        });
        assert.equal(code, 2, text);
        assert.ok(text.includes("ConfigError"), text);
        assert.ok(!text.includes("starting Kafka"), text);
        const made = await Deno.stat(`${dir}/services`).then(
          () => true,
          () => false,
        );
        assert.equal(made, false, "no service was started");
      });
    }
  } finally {
    // Should something have started, leave nothing running.
    await new Deno.Command("bash", {
      args: [`${ROOT}scripts/services.sh`, "stop"],
      env,
      stdout: "null",
      stderr: "null",
    }).output();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
