/**
 * The local PostgreSQL of scripts/services.sh on real servers: every client needs a password, the
 * pipeline's role is no superuser and owns only wiki_data's public schema, and a cluster made by
 * the old script (trust authentication, `wikistream` the superuser) is switched in place with its
 * data kept.
 */
import assert from "node:assert/strict";
import { connectDb } from "../../lib/sink/db.ts";
import { migrate } from "../../lib/sink/migrate.ts";
import { adminUrl, servicesCommand, withDatabase } from "../_pg_admin.ts";
import { freePortRange } from "../_ports.ts";

const APP_URL = Deno.env.get("DATABASE_URL") ??
  /DATABASE_URL=(\S+)/.exec(await servicesCommand("env"))![1]!;

/** The error a query on a fresh one-connection pool of `url` throws (fails when none). */
async function failure(url: string, query: string): Promise<Error> {
  const sql = connectDb(url, { max: 1 });
  try {
    await sql.unsafe(query);
  } catch (err) {
    return err as Error;
  } finally {
    await sql.end({ timeout: 5 });
  }
  assert.fail(`${query} succeeded on ${new URL(url).username}`);
}

function withoutPassword(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString();
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** `psql` as `user` with no password at all (nothing in PGPASSWORD, no ~/.pgpass). */
async function psqlWithoutPassword(
  port: string,
  user: string,
): Promise<{ ok: boolean; stderr: string }> {
  const out = await new Deno.Command("psql", {
    args: [
      "-X",
      "-w",
      "-h",
      "127.0.0.1",
      "-p",
      port,
      "-U",
      user,
      "-d",
      "postgres",
      "-c",
      "select 1",
    ],
    env: { PGPASSFILE: "/dev/null" },
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (!out) return { ok: false, stderr: "psql not installed" };
  return { ok: out.success, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("local PostgreSQL refuses every role without its password", async (t) => {
  const port = new URL(APP_URL).port;
  for (const user of ["wikistream", "postgres"]) {
    await t.step(`${user} without a password`, async () => {
      const err = await failure(
        withDatabase(
          withoutPassword(APP_URL).replace("wikistream@", `${user}@`),
          "postgres",
        ),
        "select 1",
      );
      assert.doesNotMatch(err.message, /does not exist/);
      const psql = await psqlWithoutPassword(port, user);
      assert.equal(psql.ok, false, "psql -w connects without a password");
      assert.match(psql.stderr, /password/);
    });
    await t.step(`${user} with a wrong password`, async () => {
      const url = withPassword(APP_URL, "not-the-password").replace(
        "wikistream:",
        `${user}:`,
      );
      const err = await failure(url, "select 1");
      assert.equal((err as { code?: string }).code, "28P01"); // invalid_password
    });
  }
});

Deno.test("the pipeline's role is no superuser and cannot create databases, roles or schemas", async (t) => {
  const sql = connectDb(APP_URL, { max: 1 });
  try {
    const [role] = await sql<
      {
        rolsuper: boolean;
        rolcreatedb: boolean;
        rolcreaterole: boolean;
        rolreplication: boolean;
        rolbypassrls: boolean;
      }[]
    >`select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
      from pg_roles where rolname = current_user`;
    assert.deepEqual({ ...role }, {
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
      rolbypassrls: false,
    });
    const [owner] = await sql<{ owner: string }[]>`
      select nspowner::regrole::text as owner from pg_namespace where nspname = 'public'`;
    assert.equal(
      owner!.owner,
      "wikistream",
      "the role owns wiki_data's public schema",
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
  const denied = [
    ["create database", "create database ws_should_not_exist"],
    ["create role", "create role ws_should_not_exist"],
    ["create schema", "create schema ws_should_not_exist"],
    ["COPY ... PROGRAM", "copy (select 1) to program 'true'"],
    ["read server files", "select pg_read_file('postgresql.conf')"],
    ["drop the database", "drop database postgres"],
  ];
  for (const [what, query] of denied) {
    await t.step(`${what} is denied`, async () => {
      const err = await failure(APP_URL, query!);
      assert.equal((err as { code?: string }).code, "42501", err.message); // insufficient_privilege
    });
  }
  await t.step("another database is out of reach", async () => {
    const err = await failure(withDatabase(APP_URL, "postgres"), "select 1");
    assert.equal((err as { code?: string }).code, "42501", err.message);
  });
  await t.step("migrations run as the role", async () => {
    const admin = connectDb(withDatabase(await adminUrl(), "wiki_data"), {
      max: 1,
    });
    const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    await admin.unsafe(`create schema ${schema} authorization wikistream`);
    const app = connectDb(APP_URL, { schema, max: 1 });
    try {
      await migrate(app, {});
      const [t] = await app<{ owner: string }[]>`
        select tableowner as owner from pg_tables
        where schemaname = ${schema} and tablename = 'wiki_recent_changes'`;
      assert.equal(t!.owner, "wikistream");
    } finally {
      await app.end({ timeout: 5 });
      await admin.unsafe(`drop schema ${schema} cascade`);
      await admin.end({ timeout: 5 });
    }
  });
});

Deno.test("services.sh switches a trust-auth cluster of the old script to passwords, data kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wikistream-pg-upgrade-" });
  await Deno.chmod(dir, 0o755); // the postgres system user must reach the data folder
  const port = String(freePortRange(1));
  const env = { WIKISTREAM_PG_PORT: port, WIKISTREAM_SERVICES_DIR: dir };
  try {
    await oldTrustCluster(dir, port);
    await servicesCommand("start-pg", env);
    const psql = await psqlWithoutPassword(port, "wikistream");
    assert.equal(psql.ok, false, "trust is gone");
    const appUrl = /DATABASE_URL=(\S+)/.exec(
      await servicesCommand("env", env),
    )![1]!;
    const sql = connectDb(appUrl, { max: 1 });
    try {
      const rows = await sql<{ v: string }[]>`select v from kept order by id`;
      assert.deepEqual(rows.map((r) => r.v), ["from the old cluster"]);
      await sql`insert into kept (v) values ('after')`; // the role owns the table and its sequence
      const [role] = await sql<{ rolsuper: boolean; rolcreatedb: boolean }[]>`
        select rolsuper, rolcreatedb from pg_roles where rolname = current_user`;
      assert.deepEqual({ ...role }, { rolsuper: false, rolcreatedb: false });
    } finally {
      await sql.end({ timeout: 5 });
    }
    // Idempotent: a second start changes nothing and still works.
    await servicesCommand("start-pg", env);
    const again = connectDb(appUrl, { max: 1 });
    try {
      const [n] = await again<
        { n: number }[]
      >`select count(*)::int as n from kept`;
      assert.equal(n!.n, 2);
    } finally {
      await again.end({ timeout: 5 });
    }
  } finally {
    await servicesCommand("stop-pg", env).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** What the old scripts/services.sh made: initdb --auth=trust with `wikistream` the superuser. */
async function oldTrustCluster(dir: string, port: string): Promise<void> {
  const script = `
    set -euo pipefail
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    mkdir -p "$1/pg"; [ "$(id -u)" = 0 ] && chown postgres: "$1/pg"; chmod 700 "$1/pg"
    as_pg "$bin/initdb" -D "$1/pg" -U wikistream --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$1/pg" -l "$1/pg/server.log" -w -t 60 \
      -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$2" -U wikistream wiki_data
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$2" -U wikistream -d wiki_data \
      -c "create table kept (id bigserial primary key, v text)" \
      -c "insert into kept (v) values ('from the old cluster')"`;
  const out = await new Deno.Command("bash", {
    args: ["-c", script, "old", dir, port],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test("compose's scripts/postgres_init.sh makes the same least-privilege role", async () => {
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const db = `compose_${id}`, role = `app_${id}`, pw = `pw-${id}`;
  const admin = new URL(await adminUrl());
  const root = connectDb(admin.toString(), { max: 1 });
  await root.unsafe(`create database ${db}`);
  try {
    const out = await new Deno.Command("bash", {
      args: [
        new URL("../../scripts/postgres_init.sh", import.meta.url).pathname,
      ],
      env: {
        PGHOST: admin.hostname,
        PGPORT: admin.port,
        PGPASSWORD: decodeURIComponent(admin.password),
        POSTGRES_USER: decodeURIComponent(admin.username),
        POSTGRES_DB: db,
        APP_DB_USER: role,
        APP_DB_PASSWORD: pw,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const u = new URL(withDatabase(APP_URL, db));
    u.username = role;
    u.password = pw;
    const app = connectDb(u.toString(), { max: 1 });
    try {
      await migrate(app, {});
      const [r] = await app<{ rolsuper: boolean; rolcreatedb: boolean }[]>`
        select rolsuper, rolcreatedb from pg_roles where rolname = current_user`;
      assert.deepEqual({ ...r }, { rolsuper: false, rolcreatedb: false });
      const [t] = await app<{ owner: string }[]>`
        select tableowner as owner from pg_tables where tablename = 'wiki_recent_changes'`;
      assert.equal(t!.owner, role);
    } finally {
      await app.end({ timeout: 5 });
    }
    const err = await failure(u.toString(), `create database ${db}_x`);
    assert.equal((err as { code?: string }).code, "42501");
  } finally {
    await root.unsafe(`drop database if exists ${db} with (force)`);
    await root.unsafe(`drop role if exists ${role}`);
    await root.end({ timeout: 5 });
  }
});
