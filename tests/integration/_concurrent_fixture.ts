/**
 * @module Two writes in flight on real PostgreSQL, held inside their transactions at once (see
 * {@linkcode held}): shared by the concurrent-write tests.
 */
import { createSink, type Sink, type SinkRow } from "../../lib/sink/sink.ts";
import { decodeValue } from "../../lib/sink/decode.ts";
import { connectDb, type Sql } from "../../lib/sink/db.ts";
import type { ReplayedRecord } from "./_consumer_fixture.ts";
import { captureLogger } from "../_helpers.ts";

let offset = 0;

export function rowsOf(
  records: ReplayedRecord[],
  partition: number,
): SinkRow[] {
  const enc = new TextEncoder();
  return records.map((r) => ({
    ...decodeValue(enc.encode(r.value)),
    kafka_partition: partition,
    kafka_offset: String(offset++),
  }));
}

/** Runs `body` while another session holds a lock (`hold`, run in its transaction). */
export async function holding<T>(
  sql: Sql,
  hold: string,
  body: () => Promise<T>,
): Promise<T> {
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const holder = sql.begin(async (tx) => {
    await tx.unsafe(hold);
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  try {
    return await body();
  } finally {
    release.resolve();
    await holder;
  }
}

/**
 * Runs two writes (of two replicas: two sinks, two pools) while a third session holds a lock
 * (`hold`, run in its transaction): `first` starts and must come to wait on it; then `second`
 * starts, and the lock is released once `second` finished or waits too. Returns both results.
 */
export async function held(
  sql: Sql,
  hold: string,
  first: () => Promise<unknown>,
  second: () => Promise<unknown>,
): Promise<unknown[]> {
  const running = await holding(sql, hold, async () => {
    const running = [first()];
    await waiters(sql, 1, () => false);
    let settled = false;
    running.push(second().finally(() => settled = true));
    await waiters(sql, 2, () => settled);
    return running;
  });
  return await Promise.all(running);
}

/** Resolves once `n` sessions wait on a lock, or `done()` holds; fails after 20 s. */
async function waiters(sql: Sql, n: number, done: () => boolean) {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    const [w] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_locks
      where not granted and pid <> pg_backend_pid()`;
    if (w!.n >= n) return;
    if (Date.now() > deadline) throw new Error(`${w!.n} waiting, not ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A sink on a pool of its own (a replica of its own); `schema` is its search_path. */
export function replica(
  url: string,
  schema: string,
  options: { directCopy?: boolean } = {},
): Sink & { sql: Sql } {
  const sql = connectDb(url, { schema, max: 2 });
  const sink = createSink(sql, { log: captureLogger("warn"), ...options });
  return Object.assign(sink, { sql });
}
