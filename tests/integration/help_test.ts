/** `--help` on every command, through `./wikistream` as a user types it: usage, exit 0, no side effects. */
import assert from "node:assert/strict";
import { freePortRange } from "../_ports.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function wikistream(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}wikistream`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("./wikistream prints its usage and exits 0 (no argument, --help, -h)", async (t) => {
  for (const args of [[], ["--help"], ["-h"]]) {
    await t.step(args.join(" ") || "(no argument)", async () => {
      const r = await wikistream(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: \.\/wikistream <command>/);
      for (
        const cmd of [
          "start",
          "test",
          "produce",
          "consume",
          "dlq:replay",
          "services:stop",
        ]
      ) {
        assert.ok(r.stdout.includes(`  ${cmd} `), `lists ${cmd}`);
      }
    });
  }
});

const COMMANDS: Record<string, { flags: string[]; env: string[] }> = {
  produce: {
    flags: ["--since", "--until", "--help"],
    env: ["KAFKA_BROKERS", "WIKIS", "SOURCE", "PRODUCER_HTTP_PORT"],
  },
  consume: {
    flags: ["--idle-exit", "--help"],
    env: ["KAFKA_BROKERS", "DATABASE_URL", "HTTP_PORT", "KAFKA_GROUP_ID"],
  },
  start: {
    flags: ["--since", "--until", "--help"],
    env: ["KAFKA_BROKERS", "DATABASE_URL", "WIKIS", "HTTP_PORT"],
  },
  migrate: { flags: ["--help"], env: ["DATABASE_URL"] },
  audit: {
    flags: ["--since", "--until", "--wikis", "--repair", "--help"],
    env: ["DATABASE_URL", "WIKIS"],
  },
  retention: { flags: ["--help"], env: ["DATABASE_URL", "RETENTION_DAYS"] },
  "dlq:replay": {
    flags: [
      "--reason",
      "--since",
      "--until",
      "--limit",
      "--dry-run",
      "--include-replayed",
      "--help",
      "database_rejected",
      "Exit 0",
    ],
    env: ["DATABASE_URL"],
  },
  "bench:history": { flags: ["--rows", "--help"], env: [] },
  "fake-wiki": { flags: ["--port", "--help"], env: [] },
  chaos: { flags: ["--long", "--seed", "--help"], env: [] },
  bench: { flags: ["--help"], env: ["BENCH_ROWS"] },
};

for (const [cmd, want] of Object.entries(COMMANDS)) {
  Deno.test(`./wikistream ${cmd} --help prints usage with its flags and variables, exit 0`, async () => {
    // Services on ports and in a folder of their own: a help that started them would show here.
    const dir = await Deno.makeTempDir();
    const kafkaPort = freePortRange(2);
    try {
      const r = await wikistream([cmd, "--help"], {
        WIKISTREAM_SERVICES_DIR: `${dir}/services`,
        WIKISTREAM_KAFKA_PORT: String(kafkaPort),
        WIKISTREAM_PG_PORT: String(freePortRange(1)),
        // A bad value must not matter: help comes before the configuration.
        POLL_INTERVAL_MS: "abc",
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: \\./wikistream ${cmd}\\b`));
      for (const f of want.flags) assert.ok(r.stdout.includes(f), `flag ${f}`);
      for (const v of want.env) assert.ok(r.stdout.includes(`${v}=`), `${v}`);
      assert.ok(!r.stderr.includes("Invalid"), r.stderr);
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        [],
        "nothing was started",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
