/** @module Group commit: two writes in flight; the partitions' writes that wait share one transaction. */
import type { DeadLetter, Sink, SinkRow, WriteResult } from "./sink.ts";

/** One caller's write, waiting for the group it joins. */
interface Pending {
  rows: SinkRow[];
  deadLetters: DeadLetter[];
  partitions: Set<number>;
  done: PromiseWithResolvers<WriteResult>;
}

/**
 * Wraps a sink so that up to `inFlight` writes run at once and the writes that arrive while every
 * slot is busy are merged into the next one: one COPY and one commit for the batches of several
 * partitions. A write with a free slot starts at once. Two writes in flight overlap one's COPY
 * with the other's rollups and commit (PostgreSQL uses both cores); the sink's locks keep them
 * exact (see `lib/sink/_locks.ts`). Each caller gets its own share of the result (its partitions'
 * inserted rows and dead letters), or the group's error, after which it retries alone or in a
 * later group as it sees fit. A partition is never in two writes at once, nor twice in one, so a
 * caller's share stays its own and a partition's writes keep their order; within a group, rows
 * keep their callers' order.
 */
export function groupWrites(sink: Sink, inFlight = 2): Sink {
  const queue: Pending[] = [];
  /** Partitions of the writes in flight. */
  const busy = new Set<number>();
  let running = 0;

  function pump(): void {
    while (running < inFlight && queue.length > 0) {
      const group = takeGroup(queue, busy);
      if (group.length === 0) return;
      const partitions = group.flatMap((p) => [...p.partitions]);
      for (const n of partitions) busy.add(n);
      running++;
      void writeGroup(sink, group).finally(() => {
        running--;
        for (const n of partitions) busy.delete(n);
        pump();
      });
    }
  }

  return {
    write(rows, deadLetters = []) {
      const pending: Pending = {
        rows,
        deadLetters,
        partitions: partitionsOf(rows, deadLetters),
        done: Promise.withResolvers<WriteResult>(),
      };
      queue.push(pending);
      pump();
      return pending.done.promise;
    },
    close: () => sink.close(),
  };
}

/**
 * Takes the longest run of queued writes from the front whose partitions overlap neither each
 * other nor a write in flight (`busy`).
 */
function takeGroup(queue: Pending[], busy: ReadonlySet<number>): Pending[] {
  const group: Pending[] = [];
  const taken = new Set<number>(busy);
  for (let i = 0; i < queue.length;) {
    const p = queue[i]!;
    if ([...p.partitions].some((n) => taken.has(n))) {
      // A later write of the same partition must not overtake this one.
      for (const n of p.partitions) taken.add(n);
      i++;
      continue;
    }
    for (const n of p.partitions) taken.add(n);
    group.push(p);
    queue.splice(i, 1);
  }
  return group;
}

/** Writes a group as one, then settles each caller with its share. */
async function writeGroup(sink: Sink, group: Pending[]): Promise<void> {
  let result: WriteResult;
  try {
    result = group.length === 1
      ? await sink.write(group[0]!.rows, group[0]!.deadLetters)
      : await sink.write(
        group.flatMap((p) => p.rows),
        group.flatMap((p) => p.deadLetters),
      );
  } catch (err) {
    // PostgreSQL refused the combined write for something one caller's rows may cause (a
    // non-row error, e.g. a limit): write each alone, so one partition's fault stays its own.
    if (group.length > 1 && answeredByDatabase(err)) {
      for (const p of group) await writeGroup(sink, [p]);
      return;
    }
    for (const p of group) p.done.reject(err);
    return;
  }
  if (group.length === 1) return group[0]!.done.resolve(result);
  for (const p of group) p.done.resolve(shareOf(result, p));
}

/** The part of a group's result that belongs to one caller's partitions. */
function shareOf(result: WriteResult, p: Pending): WriteResult {
  const byPartition = new Map<number, number>();
  let inserted = 0;
  for (const n of p.partitions) {
    const k = result.byPartition.get(n);
    if (k === undefined) continue;
    byPartition.set(n, k);
    inserted += k;
  }
  const deadLettered = result.deadLettered.filter((d) =>
    p.partitions.has(d.partition)
  );
  // Rows the database rejected are dead letters, neither inserted nor duplicates.
  const rejected = deadLettered.length - p.deadLetters.length;
  return {
    inserted,
    duplicates: p.rows.length - inserted - rejected,
    deadLettered,
    byPartition,
  };
}

/** An error PostgreSQL answered on a live connection (not an outage, a timeout or a lost pool). */
function answeredByDatabase(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === "PostgresError" && typeof e.code === "string" &&
    !/^(08|57|53|58)/.test(e.code);
}

function partitionsOf(
  rows: readonly SinkRow[],
  deadLetters: readonly DeadLetter[],
): Set<number> {
  const out = new Set<number>();
  for (const r of rows) out.add(r.kafka_partition);
  for (const d of deadLetters) out.add(d.partition);
  return out;
}
