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

/**
 * Applies each pending migration in its own transaction; returns the versions applied. A file
 * whose first line is `-- migrate: no-transaction` runs statement by statement outside any
 * transaction (for `create index concurrently`), and is recorded once all its statements ran. Its
 * statements end with `;` at the end of a line, must be safe to re-run (a failed run is retried
 * whole), and a statement naming `{partition of T}` runs once per partition of table T.
 */
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
    const ran = NO_TRANSACTION.test(text)
      ? await applyOutsideTransaction(sql, version, text)
      : await applyInTransaction(sql, version, text);
    if (!ran) continue;
    done.push(version);
    options.log?.info("migration applied", { version });
  }
  return done;
}

type Reserved = Awaited<ReturnType<Sql["reserve"]>>;

const NO_TRANSACTION = /^-- migrate: no-transaction[ \t]*\r?$/m;
const LOCK_KEY = "wikistream.migrate";

/** Runs one migration and records it in one transaction; false if another migrator did it. */
async function applyInTransaction(
  sql: Sql,
  version: string,
  text: string,
): Promise<boolean> {
  return await sql.begin(async (tx) => {
    // One advisory lock makes concurrent migrators (two consumers starting) take turns.
    await tx`select pg_advisory_xact_lock(hashtext(${LOCK_KEY}))`;
    const [again] =
      await tx`select 1 from schema_migrations where version = ${version}`;
    if (again) return false;
    await tx.unsafe(text);
    await tx`insert into schema_migrations (version) values (${version})`;
    return true;
  });
}

/** Runs a no-transaction migration's statements one by one on one connection, then records it. */
async function applyOutsideTransaction(
  sql: Sql,
  version: string,
  text: string,
): Promise<boolean> {
  const conn = await sql.reserve();
  try {
    // The session form of the same lock: transactional migrators wait for this one and back.
    await conn`select pg_advisory_lock(hashtext(${LOCK_KEY}))`;
    try {
      const [again] =
        await conn`select 1 from schema_migrations where version = ${version}`;
      if (again) return false;
      for (const statement of splitStatements(text)) {
        for (const s of await expandPartitions(conn, statement)) {
          await conn.unsafe(s);
        }
      }
      await conn`insert into schema_migrations (version) values (${version})`;
      return true;
    } finally {
      await conn`select pg_advisory_unlock(hashtext(${LOCK_KEY}))`;
    }
  } finally {
    conn.release();
  }
}

/** Splits SQL into statements at each `;` that ends a line; comment-only lines are dropped. */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*--/.test(line) || (cur.length === 0 && line.trim() === "")) {
      continue;
    }
    cur.push(line);
    if (/;\s*$/.test(line)) {
      out.push(cur.join("\n").trim());
      cur = [];
    }
  }
  if (cur.join("").trim() !== "") out.push(cur.join("\n").trim());
  return out;
}

/** A statement naming `{partition of T}` becomes one statement per partition of T. */
async function expandPartitions(
  conn: Reserved,
  statement: string,
): Promise<string[]> {
  const m = statement.match(/\{partition of ([a-z_][a-z0-9_]*)\}/);
  if (!m) return [statement];
  const parts = await conn<{ name: string }[]>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = to_regclass(${m[1]!}) order by 1`;
  return parts.map((p) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(p.name)) {
      throw new RangeError(`Cannot expand partition name "${p.name}"`);
    }
    return statement.replaceAll(m[0], p.name);
  });
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
