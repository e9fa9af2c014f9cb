/** @module PostgreSQL connections (postgres.js) with TCP_NODELAY set on every socket. */
import net from "node:net";
import { once } from "node:events";
import postgres from "postgres";
import { readCaFile } from "../core/config.ts";

/** The postgres.js client type used across the project. */
export type Sql = postgres.Sql<Record<string, never>>;

/** A transaction of {@linkcode Sql}: what `sql.begin` hands its callback. */
export type Transaction = postgres.TransactionSql<Record<string, never>>;

/** Options for {@linkcode connectDb}. */
export interface DbOptions {
  /** Schema to use (tests isolate themselves in one); defaults to the server's search_path. */
  schema?: string;
  max?: number;
  /** application_name of every connection (default `wikistream`). */
  applicationName?: string;
  /** Server-side statement_timeout of every session, in milliseconds (default: the server's). */
  statementTimeoutMs?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeoutSeconds?: number;
  /** Called with each notice instead of printing it. */
  onnotice?: (notice: unknown) => void;
  /** Called with the text of every query sent (a query counter, e.g. for tests of cost). */
  onQuery?: (query: string) => void;
}

/**
 * Opens a pool; sockets get TCP_NODELAY, which makes COPY 3-4x faster (postgres.js never sets it).
 * `sslmode` in the URL is honoured by postgres.js, which negotiates TLS over the socket given
 * here; `sslrootcert=<file>` (which postgres.js ignores) is read here and verifies the server
 * against that CA (with `sslmode=verify-full`, also its host name; `require`/`verify-ca`: the CA
 * only, as libpq does when a root certificate is given).
 */
export function connectDb(url: string, options: DbOptions = {}): Sql {
  ignoreWriteAfterClose();
  const tls = tlsFromUrl(url);
  const socket = async (opts: { host: string[]; port: number[] }) => {
    const host = opts.host[0] ?? "127.0.0.1";
    const s = net.connect({ host, port: opts.port[0] ?? 5432 });
    // postgres.js takes the TLS server name (SNI, host name check) from `socket.host`.
    Object.assign(s, { host });
    s.setNoDelay(true);
    await Promise.race([
      once(s, "connect"),
      once(s, "error").then(([err]) => {
        throw err;
      }),
    ]);
    return s;
  };
  return postgres(tls.url, {
    ...(tls.ssl ? { ssl: tls.ssl } : {}),
    max: options.max ?? 4,
    onnotice: options.onnotice ?? (() => {}),
    ...(options.onQuery
      ? { debug: (_c: number, query: string) => options.onQuery!(query) }
      : {}),
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 60,
    connection: {
      application_name: options.applicationName ?? "wikistream",
      ...(options.schema ? { search_path: options.schema } : {}),
      ...(options.statementTimeoutMs
        ? { statement_timeout: Math.trunc(options.statementTimeoutMs) }
        : {}),
    },
    // postgres.js accepts a connected socket factory; its typings omit the option.
    ...({ socket } as Record<string, unknown>),
  }) as unknown as Sql;
}

let guarded = false;

const caFiles = new Map<string, string>();

/** Takes `sslrootcert=<file>` out of the URL and turns it into postgres.js's `ssl` object. */
function tlsFromUrl(
  url: string,
): { url: string; ssl?: Record<string, unknown> } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url }; // multi-host URLs: postgres.js parses them itself
  }
  const file = u.searchParams.get("sslrootcert");
  if (file === null || file === "system") return { url };
  u.searchParams.delete("sslrootcert");
  const mode = u.searchParams.get("sslmode") ?? "prefer";
  if (!["require", "verify-ca", "verify-full"].includes(mode)) {
    return { url: u.toString() };
  }
  let ca = caFiles.get(file);
  if (ca === undefined) {
    ca = readCaFile(file, "DATABASE_URL (sslrootcert)");
    caFiles.set(file, ca);
  }
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const ssl: Record<string, unknown> = { ca, rejectUnauthorized: true };
  if (mode === "verify-full") {
    ssl.host = host;
    if (!net.isIP(host)) ssl.servername = host;
  } else ssl.checkServerIdentity = () => undefined;
  return { url: u.toString(), ssl };
}

/**
 * postgres.js 3.4 bug: when the server closes a connection during COPY FROM STDIN, the copy
 * stream's CopyDone/CopyFail is queued with setImmediate and then written to a socket that is
 * already gone (`socket.write` on null), an uncaught TypeError that would kill the process. The
 * query itself is rejected normally (CONNECTION_CLOSED) and retried by the caller, so only this
 * exact stray error is swallowed.
 */
function ignoreWriteAfterClose(): void {
  if (guarded) return;
  guarded = true;
  globalThis.addEventListener("error", (e) => {
    const err = e.error as Error | undefined;
    if (
      err instanceof TypeError &&
      err.message.includes("reading 'write'") &&
      /postgres[\\/].*connection\.js/.test(err.stack ?? "") &&
      /nextWrite/.test(err.stack ?? "")
    ) e.preventDefault();
  });
  // postgres.js 3.4 bug: `end({ timeout })` on a pool abandoned after a connection failure
  // terminates its connections and rejects a query of theirs that nobody awaits any more (seen
  // in the chaos suite's PostgreSQL restart): an unhandled rejection that would kill the
  // process. Every query a caller awaits gets the same error through its own promise.
  globalThis.addEventListener("unhandledrejection", (e) => {
    const err = e.reason as Error & { code?: unknown } | undefined;
    if (
      err instanceof Error && err.code === "CONNECTION_DESTROYED" &&
      /postgres[\\/].*connection\.js/.test(err.stack ?? "") &&
      /terminate/.test(err.stack ?? "")
    ) e.preventDefault();
  });
}

/**
 * Awaits statements of one transaction sent together (pipelined: one round trip) and returns
 * their results in order. When any fails, throws the error of the first to fail in statement
 * order, not the first to arrive: postgres.js retries some failures of a prepared statement (its
 * plan went stale, e.g. a column changed type) by sending it again behind the ones already
 * pipelined, which then fail first with 25P02 (transaction aborted) and would hide the cause.
 */
export async function pipelined<const T extends readonly unknown[]>(
  statements: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(statements);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
