/** @module Applies the numbered, forward-only SQL files in migrations/ (`deno task migrate`). */
import { connectDb, type Sql } from "./db.ts";
import { loadConfig, redactUrl } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { ConfigError } from "../core/errors.ts";

/** Options for {@linkcode migrate}. */
export interface MigrateOptions {
  dir?: URL;
  log?: Logger;
}

const DEFAULT_DIR = new URL("../../migrations/", import.meta.url);

/** Applies each pending migration in its own transaction; returns the versions applied. */
export async function migrate(
  sql: Sql,
  options: MigrateOptions = {},
): Promise<string[]> {
  const dir = options.dir ?? DEFAULT_DIR;
  const files = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && /^\d{4}_.+\.sql$/.test(e.name))
    .map((e) => e.name)
    .sort();
  await sql`create table if not exists schema_migrations (
    version text primary key, applied_at timestamptz not null default now())`;
  const applied = new Set(
    (await sql<{ version: string }[]>`select version from schema_migrations`)
      .map((r) => r.version),
  );
  const done: string[] = [];
  for (const file of files) {
    const version = file.replace(/\.sql$/, "");
    if (applied.has(version)) continue;
    const text = await Deno.readTextFile(new URL(file, dir));
    await sql.begin(async (tx) => {
      // One advisory lock makes concurrent migrators (two consumers starting) take turns.
      await tx`select pg_advisory_xact_lock(hashtext('wikistream.migrate'))`;
      const [again] =
        await tx`select 1 from schema_migrations where version = ${version}`;
      if (again) return;
      await tx.unsafe(text);
      await tx`insert into schema_migrations (version) values (${version})`;
      done.push(version);
    });
    options.log?.info("migration applied", { version });
  }
  return done;
}

/** `deno task migrate`: applies pending migrations to DATABASE_URL. */
export async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger({ service: "migrate" }).error(err.message);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ service: "migrate", level: config.LOG_LEVEL });
  const sql = connectDb(config.DATABASE_URL, { max: 1 });
  try {
    const done = await migrate(sql, { log });
    log.info("migrations up to date", {
      applied: done.length,
      database: redactUrl(config.DATABASE_URL),
    });
    return 0;
  } catch (err) {
    log.error("migration failed", { err });
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) Deno.exit(await main());
