/** @module Consumer group lag per partition: end offset minus committed offset. */
import type { Admin } from "kafkajs";

/** Per-partition lag of a consumer group. */
export interface PartitionLag {
  partition: number;
  committed: string | null;
  start: string;
  end: string;
  lag: string;
}

/** Options for {@linkcode fetchLag}. */
export interface LagOptions {
  groupId: string;
  topic: string;
}

/**
 * Lag per partition: end offset minus committed offset. A partition with no commit counts from
 * the log start; a commit below the log start (after retention) counts from the log start too.
 */
export async function fetchLag(
  admin: Admin,
  options: LagOptions,
): Promise<PartitionLag[]> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(options.topic),
    admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] }),
  ]);
  const byPartition = new Map<number, string>();
  for (const t of committed) {
    for (const p of t.partitions) byPartition.set(p.partition, p.offset);
  }
  return ends.sort((a, b) => a.partition - b.partition).map((e) => {
    const c = byPartition.get(e.partition);
    const hasCommit = c !== undefined && c !== "-1";
    const from = hasCommit
      ? (BigInt(c) < BigInt(e.low) ? BigInt(e.low) : BigInt(c))
      : BigInt(e.low);
    const lag = BigInt(e.high) - from;
    return {
      partition: e.partition,
      committed: hasCommit ? c : null,
      start: e.low,
      end: e.high,
      lag: (lag < 0n ? 0n : lag).toString(),
    };
  });
}
