/** @module A pool the sink owns and replaces, whose abandoned backends are terminated, not leaked. */
import type { Sql } from "./db.ts";
import type { Logger } from "../core/log.ts";

/** What a pool factory is asked for: a unique application_name and a statement timeout. */
export interface SessionSettings {
  /** Every connection of the pool reports this name (pg_stat_activity), so it can be found. */
  applicationName: string;
  /** Server-side statement_timeout: a statement blocked longer (a lock) is cancelled. */
  statementTimeoutMs: number;
}

/** Opens one pool with the given session settings. */
export type PoolFactory = (session: SessionSettings) => Sql;

/**
 * A replaceable pool. postgres.js 3.4 can leave a connection that died in the middle of COPY stuck
 * for good, so after a connection failure or a write timeout only a new pool recovers; the old
 * pool's backends may still be waiting on a lock, so they are terminated through the new pool
 * (retried at every later replacement until it works), and a long lock never exhausts
 * `max_connections`.
 */
export class OwnedPool {
  readonly #factory: PoolFactory;
  readonly #statementTimeoutMs: number;
  readonly #log: Logger;
  #name = "";
  #sql: Sql;
  #generation = new AbortController();
  /** application_names of replaced pools whose backends may still be alive (until a sweep works). */
  readonly #retired = new Set<string>();

  constructor(
    factory: PoolFactory,
    options: { statementTimeoutMs: number; log: Logger },
  ) {
    this.#factory = factory;
    this.#statementTimeoutMs = options.statementTimeoutMs;
    this.#log = options.log;
    this.#sql = this.#open();
  }

  /** The current pool. */
  get sql(): Sql {
    return this.#sql;
  }

  /**
   * Aborts when the current pool is replaced: a write in flight on it fails at once instead of
   * hanging (postgres.js may never settle a query whose connection died under it).
   */
  get signal(): AbortSignal {
    return this.#generation.signal;
  }

  /** Opens a new pool, ends the old one and terminates the old one's backends. */
  replace(reason: string): void {
    const old = this.#sql;
    this.#generation.abort(
      Object.assign(new Error(`Database pool replaced (${reason})`), {
        code: "POOL_REPLACED",
        retriable: true,
      }),
    );
    this.#generation = new AbortController();
    this.#retired.add(this.#name);
    this.#sql = this.#open();
    old.end({ timeout: 0 }).catch(() => {});
    this.#log.warn("database pool replaced", { reason });
    void this.#terminateRetired();
  }

  /** Ends the current pool (terminating retired backends first, when it can within 1 s). */
  async end(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#terminateRetired(),
      new Promise((r) => timer = setTimeout(r, 1000)),
    ]);
    clearTimeout(timer);
    await this.#sql.end({ timeout: 5 });
  }

  #open(): Sql {
    this.#name = `wikistream-sink-${crypto.randomUUID().slice(0, 8)}`;
    return this.#factory({
      applicationName: this.#name,
      statementTimeoutMs: this.#statementTimeoutMs,
    });
  }

  /** Terminates the backends of replaced pools; names whose backends are gone are forgotten. */
  async #terminateRetired(): Promise<void> {
    if (this.#retired.size === 0) return;
    const names = [...this.#retired];
    try {
      const rows = await this.#sql<{ name: string; pid: number }[]>`
        select application_name as name, pid,
          pg_terminate_backend(pid) as terminated
        from pg_stat_activity
        where application_name = any(${names}) and pid <> pg_backend_pid()`;
      for (const n of names) this.#retired.delete(n);
      if (rows.length > 0) {
        this.#log.warn("backends of a replaced pool terminated", {
          count: rows.length,
        });
      }
    } catch (err) {
      this.#log.debug("cannot terminate a replaced pool's backends yet", {
        err,
      });
    }
  }
}
