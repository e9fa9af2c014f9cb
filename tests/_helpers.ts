/** @module Shared test helpers: configs for real local services, isolated schemas, a capturing logger. */
import { type Config, loadConfig } from "../lib/core/config.ts";
import { connectDb, type Sql } from "../lib/sink/db.ts";
import { createLogger, type Logger, type LogLevel } from "../lib/core/log.ts";
import { createOwnedSchema } from "./_pg_admin.ts";

/** A config for the local services with unique topic, group and transactional ids. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const id = crypto.randomUUID().slice(0, 8);
  return loadConfig({
    KAFKA_BROKERS: Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092",
    DATABASE_URL: Deno.env.get("DATABASE_URL") ??
      "postgres://wikistream@127.0.0.1:15432/wiki_data",
    KAFKA_TOPIC: `test.${id}.rc`,
    KAFKA_GROUP_ID: `test-${id}`,
    KAFKA_TRANSACTIONAL_ID: `test-${id}`,
    KAFKA_CLIENT_ID: `test-${id}`,
    POLL_INTERVAL_MS: "200",
    LOG_LEVEL: "warn",
    ...overrides,
  });
}

/** Creates a fresh schema owned by DATABASE_URL's role; dispose drops it (as that role). */
export async function tempSchema(
  config: Config,
  options: { adminUrl?: string; onQuery?: (query: string) => void } = {},
): Promise<{ name: string; sql: Sql } & AsyncDisposable> {
  const name = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  // The pipeline's role cannot create schemas: the superuser makes one the role owns.
  await createOwnedSchema(config.DATABASE_URL, name, options);
  const sql = connectDb(config.DATABASE_URL, {
    schema: name,
    max: 2,
    ...(options.onQuery ? { onQuery: options.onQuery } : {}),
  });
  return {
    name,
    sql,
    async [Symbol.asyncDispose]() {
      await sql.unsafe(`drop schema ${name} cascade`).catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };
}

/** A logger that keeps every line (and prints warnings and errors when DEBUG_TESTS is set). */
export function captureLogger(
  level: LogLevel = "debug",
): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: "test",
    level,
    write: (line) => {
      lines.push(JSON.parse(line));
      // deno-lint-ignore no-console
      if (Deno.env.get("DEBUG_TESTS")) console.error(line);
    },
  });
  return Object.assign(log, { lines });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  stepMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`Condition not met within ${timeoutMs} ms`, { cause: last });
}
