/** @module Applies the numbered, forward-only SQL files in migrations/ (`deno task migrate`). */
import { connectDb, type Sql } from "./db.ts";
import { loadConfig, redactUrl } from "../core/config.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { ConfigError } from "../core/errors.ts";
import { helpRequested, printUsage } from "../core/cli.ts";

/** Options for {@linkcode migrate}. */
export interface MigrateOptions {
  dir?: URL;
  log?: Logger;
}

const DEFAULT_DIR = new URL("../../migrations/", import.meta.url);

/**
 * Applies each pending migration in its own transaction, one migrator at a time (a session
 * advisory lock, taken by polling); returns the versions applied. A file
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
  // One migrator at a time. The lock is taken by polling, never by a blocking wait: a migrator
  // blocked inside a statement holds a snapshot, which `create index concurrently` in the
  // migrator holding the lock waits for (a deadlock, seen with two consumers starting at once).
  const lock = await sql.reserve();
  try {
    await pollAdvisoryLock(lock);
    try {
      await lock`create table if not exists schema_migrations (
        version text primary key, applied_at timestamptz not null default now())`;
      const applied = new Set(
        (await lock<
          { version: string }[]
        >`select version from schema_migrations`)
          .map((r) => r.version),
      );
      const pending = files.filter((f) =>
        !applied.has(f.replace(/\.sql$/, ""))
      );
      return await applyPending(lock, dir, pending, options.log);
    } finally {
      await lock`select pg_advisory_unlock(hashtext(${LOCK_KEY}))`;
    }
  } finally {
    lock.release();
  }
}

/** Applies the pending files in order (the caller holds the migration lock on `lock`). */
async function applyPending(
  lock: Reserved,
  dir: URL,
  pending: string[],
  log: Logger | undefined,
): Promise<string[]> {
  const done: string[] = [];
  for (const file of pending) {
    const version = file.replace(/\.sql$/, "");
    const text = await Deno.readTextFile(new URL(file, dir));
    const ran = NO_TRANSACTION.test(text)
      ? await applyOutsideTransaction(lock, version, text)
      : await applyInTransaction(lock, version, text);
    if (!ran) continue;
    done.push(version);
    log?.info("migration applied", { version });
  }
  return done;
}

/** Takes the session-level migration lock, retrying a non-blocking try every 200 ms. */
async function pollAdvisoryLock(conn: Reserved): Promise<void> {
  for (;;) {
    const [r] = await conn<{ ok: boolean }[]>`
      select pg_try_advisory_lock(hashtext(${LOCK_KEY})) as ok`;
    if (r?.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

type Reserved = Awaited<ReturnType<Sql["reserve"]>>;

const NO_TRANSACTION = /^-- migrate: no-transaction[ \t]*\r?$/m;
const LOCK_KEY = "wikistream.migrate";

/** Runs one migration and records it in one transaction; false if another migrator did it. */
async function applyInTransaction(
  conn: Reserved,
  version: string,
  text: string,
): Promise<boolean> {
  await conn`begin`;
  try {
    const [again] =
      await conn`select 1 from schema_migrations where version = ${version}`;
    if (!again) {
      await conn.unsafe(text);
      await conn`insert into schema_migrations (version) values (${version})`;
    }
    await conn`commit`;
    return !again;
  } catch (err) {
    await conn`rollback`.catch(() => {});
    throw err;
  }
}

/** Runs a no-transaction migration's statements one by one, then records it. */
async function applyOutsideTransaction(
  conn: Reserved,
  version: string,
  text: string,
): Promise<boolean> {
  const [again] =
    await conn`select 1 from schema_migrations where version = ${version}`;
  if (again) return false;
  for (const statement of splitStatements(text)) {
    for (const s of await expandPartitions(conn, statement)) {
      await dropInvalidIndex(conn, s);
      await conn.unsafe(s);
    }
  }
  await conn`insert into schema_migrations (version) values (${version})`;
  return true;
}

/**
 * Before `create index concurrently if not exists NAME`: a failed earlier run (a lock timeout, a
 * cancel) leaves NAME behind INVALID, which `if not exists` would keep for good; drop it first.
 */
async function dropInvalidIndex(conn: Reserved, statement: string) {
  const m = statement.match(
    /^create\s+(?:unique\s+)?index\s+concurrently\s+if\s+not\s+exists\s+([a-z_][a-z0-9_]*)\s/i,
  );
  if (!m) return;
  const [bad] = await conn`
    select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname = ${m[
    1
  ]!} and c.relnamespace = current_schema()::regnamespace
      and not i.indisvalid`;
  if (bad) await conn.unsafe(`drop index concurrently if exists ${m[1]}`);
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
export async function main(args = Deno.args): Promise<number> {
  if (helpRequested(args)) return printUsage("migrate");
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger({ service: "migrate", format: "auto" }).error(err.message);
      return 2;
    }
    throw err;
  }
  const log = createLogger({
    service: "migrate",
    level: config.LOG_LEVEL,
    format: config.LOG_FORMAT,
  });
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
