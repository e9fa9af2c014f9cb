/** @module The HTTP side's own small PostgreSQL pool: short timeouts, replaced when it wedges. */
import { connectDb, type DbOptions, type Sql } from "./db.ts";

/** Runs the monitoring queries (readiness, lag's newest event, dashboard) with a hard deadline. */
export interface MonitorDb {
  /** Runs `fn` on the pool; rejects after the deadline (the pool is then replaced). */
  use<T>(
    fn: (sql: Sql) => Promise<T>,
    options?: { timeoutMs?: number },
  ): Promise<T>;
  /** Since when every monitoring query has failed, and the last error; undefined when they work. */
  failing(): { since: number; error: unknown } | undefined;
  end(): Promise<void>;
}

/** Options for {@linkcode createMonitorDb}. */
export interface MonitorDbOptions {
  schema?: string;
  /** The whole query's deadline, connecting included (default 2000 ms). */
  timeoutMs?: number;
  /** Pool size (default 2). */
  max?: number;
  /** Opens the pool (tests); default {@linkcode connectDb}. */
  connect?: (url: string, options: DbOptions) => Sql;
}

/**
 * Creates the monitoring pool. It is separate from the sink's and the consumer's pools, so a
 * slow dashboard never holds a write and a wedged write never holds an endpoint. Every query has
 * a server-side statement_timeout and a client-side deadline; a query that misses the deadline
 * or loses its connection replaces the pool, so the endpoints answer again as soon as
 * PostgreSQL does, whatever state postgres.js left the old connections in.
 */
export function createMonitorDb(
  url: string,
  options: MonitorDbOptions = {},
): MonitorDb {
  const timeoutMs = options.timeoutMs ?? 2000;
  const open = () =>
    (options.connect ?? connectDb)(url, {
      schema: options.schema,
      max: options.max ?? 2,
      applicationName: "wikistream-monitor",
      statementTimeoutMs: Math.max(100, timeoutMs - 250),
      connectTimeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
    });
  let sql = open();
  let failure: { since: number; error: unknown } | undefined;
  let ended = false;
  const replace = () => {
    if (ended) return;
    const old = sql;
    sql = open();
    old.end({ timeout: 0 }).catch(() => {});
  };
  return {
    async use(fn, opts) {
      try {
        const result = await deadline(fn(sql), opts?.timeoutMs ?? timeoutMs);
        failure = undefined;
        return result;
      } catch (err) {
        failure = { since: failure?.since ?? Date.now(), error: err };
        if (!isAnswer(err)) replace();
        throw err;
      }
    },
    failing: () => failure,
    end: () => {
      ended = true;
      return sql.end({ timeout: 1 });
    },
  };
}

/** Rejects with a TimeoutError when `p` takes longer than `ms`. */
function deadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DOMException(
            `PostgreSQL did not answer within ${ms} ms`,
            "TimeoutError",
          ),
        ),
      ms,
    );
  });
  p.catch(() => {});
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** An error PostgreSQL answered on a live connection (a query's own fault): keep the pool. */
function isAnswer(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown };
  return e?.name === "PostgresError" && typeof e.code === "string" &&
    !/^(08|57)/.test(e.code);
}
