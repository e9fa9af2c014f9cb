/**
 * @module The local cluster's superuser, for tests only: creating schemas and databases that the
 * pipeline's role (no CREATEDB, no CREATE on the database) then owns, as in production.
 */
import { connectDb } from "../lib/sink/db.ts";

const SERVICES = new URL("../scripts/services.sh", import.meta.url).pathname;

/** Runs `services.sh <cmd>` with `env` added; returns its stdout (throws on failure). */
export async function servicesCommand(
  cmd: string,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [SERVICES, cmd],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run services.sh ${cmd}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** The superuser's URL: WIKISTREAM_PG_ADMIN_URL (scripts/test.sh sets it), else services.sh. */
export async function adminUrl(
  env?: Record<string, string>,
): Promise<string> {
  const given = env ? undefined : Deno.env.get("WIKISTREAM_PG_ADMIN_URL");
  return given ?? (await servicesCommand("admin-url", env)).trim();
}

/** `url` with its path (the database) replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates schema `name` in the app URL's database, owned by the app URL's role. */
export async function createOwnedSchema(
  appUrl: string,
  name: string,
  options: { adminUrl?: string } = {},
): Promise<void> {
  const app = new URL(appUrl);
  const admin = connectDb(
    withDatabase(options.adminUrl ?? await adminUrl(), app.pathname.slice(1)),
    { max: 1 },
  );
  try {
    await admin.unsafe(
      `create schema ${name} authorization "${
        decodeURIComponent(app.username)
      }"`,
    );
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/**
 * Creates database `name` laid out as services.sh lays out wiki_data: owned by the superuser,
 * its public schema owned by the app URL's role; returns the app's URL of it.
 */
export async function createAppDatabase(
  appUrl: string,
  name: string,
  admin?: string,
): Promise<string> {
  const role = `"${decodeURIComponent(new URL(appUrl).username)}"`;
  const base = admin ?? await adminUrl();
  const root = connectDb(base, { max: 1 });
  try {
    await root.unsafe(`create database ${name}`);
    await root.unsafe(`revoke all on database ${name} from public`);
    await root.unsafe(
      `grant connect, temporary on database ${name} to ${role}`,
    );
  } finally {
    await root.end({ timeout: 5 });
  }
  const inside = connectDb(withDatabase(base, name), { max: 1 });
  try {
    await inside.unsafe(`alter schema public owner to ${role}`);
  } finally {
    await inside.end({ timeout: 5 });
  }
  return withDatabase(appUrl, name);
}

/** Drops database `name` (connections are closed by force); errors are ignored. */
export async function dropDatabase(
  name: string,
  admin?: string,
): Promise<void> {
  const root = connectDb(admin ?? await adminUrl(), { max: 1 });
  await root.unsafe(`drop database if exists ${name} with (force)`)
    .catch(() => {});
  await root.end({ timeout: 5 });
}
