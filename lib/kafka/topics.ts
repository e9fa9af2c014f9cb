/** @module Creates missing Kafka topics. */
import type { Kafka } from "kafkajs";

/** A topic to create when missing. */
export interface TopicSpec {
  topic: string;
  partitions: number;
  config?: Record<string, string>;
}

/** Limits of the checkpoint topic: room for a checkpoint (kept under 64 KiB), compacted hourly. */
export const CHECKPOINT_TOPIC_CONFIG: Record<string, string> = {
  "cleanup.policy": "compact",
  "max.message.bytes": String(256 * 1024),
  "segment.ms": String(3_600_000),
  "segment.bytes": String(64 * 1024 * 1024),
  "min.cleanable.dirty.ratio": "0.1",
};

/** Creates each topic that does not exist yet (idempotent; safe when several processes race). */
export async function ensureTopics(
  kafka: Kafka,
  specs: TopicSpec[],
): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: -1,
        configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({
          name,
          value,
        })),
      })),
    }).catch(async (err: Error & { type?: string }) => {
      if (
        err.type !== "TOPIC_ALREADY_EXISTS" &&
        !/already exists/i.test(err.message)
      ) throw err;
      // Another process created it a moment ago: wait, as waitForLeaders would have, until
      // every partition has a leader, or the first use fails with UNKNOWN_TOPIC_OR_PARTITION.
      await untilLeaders(admin, missing.map((s) => s.topic));
    });
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Waits (bounded, about 10 s) until every partition of `topics` has a leader. */
async function untilLeaders(
  admin: ReturnType<Kafka["admin"]>,
  topics: string[],
): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      const ready = meta.topics.every((t) =>
        t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)
      );
      if (ready) return;
    } catch (err) {
      if (attempt >= 40) throw err;
    }
    if (attempt >= 40) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
