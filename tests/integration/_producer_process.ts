/** @module producer.ts as a child process: its environment from a test config, its log lines counted. */
import type { testConfig } from "../_helpers.ts";
import { taskArgs } from "../_task.ts";

const ROOT = new URL("../../", import.meta.url);

/** Starts producer.ts as `deno task produce` runs it (scoped permissions); counts "published" lines. */
export async function spawnProducer(
  env: Record<string, string>,
  args: string[],
) {
  const full = { ...env, PRODUCER_HTTP_PORT: "0" };
  const child = new Deno.Command(Deno.execPath(), {
    args: [...(await taskArgs("produce", full)), ...args],
    cwd: ROOT,
    env: full,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const state = { pages: 0, lines: [] as string[] };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        state.lines.push(line);
        if (line.includes('"msg":"published"')) state.pages++;
      }
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return { child, state, pumped };
}

export function envOf(
  config: ReturnType<typeof testConfig>,
): Record<string, string> {
  return {
    KAFKA_BROKERS: config.KAFKA_BROKERS.join(","),
    KAFKA_TOPIC: config.KAFKA_TOPIC,
    KAFKA_TRANSACTIONAL_ID: config.KAFKA_TRANSACTIONAL_ID,
    KAFKA_CLIENT_ID: config.KAFKA_CLIENT_ID,
    MEDIAWIKI_API_URL: config.MEDIAWIKI_API_URL,
    WIKIS: config.WIKIS.join(","),
    POLL_INTERVAL_MS: "200",
    LOG_LEVEL: "info",
  };
}
