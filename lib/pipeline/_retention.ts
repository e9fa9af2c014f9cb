/** @module Detects records that retention deleted before the consumer group wrote them. */
import type { PartitionLag } from "../kafka/lag.ts";
import type { Logger } from "../core/log.ts";
import { retry } from "../core/retry.ts";

/** Records of one partition deleted by retention before they were written. */
export interface RetentionLoss {
  partition: number;
  /** The group's committed offset when the loss was seen. */
  committed: string;
  /** The partition's log start then: offsets in [committed, start) are gone. */
  start: string;
  /** Offsets lost (transaction markers among them count too: an upper bound of the rows). */
  records: string;
  seen_at: string;
}

/** Remembers every loss seen; {@linkcode RetentionWatch.check} logs and counts each new one. */
export class RetentionWatch {
  readonly #topic: string;
  readonly #log: Logger;
  readonly #losses = new Map<number, RetentionLoss>();
  #total = 0n;

  constructor(topic: string, log: Logger) {
    this.#topic = topic;
    this.#log = log;
  }

  /** Every loss seen, one entry per partition (grown when the log start moved on). */
  get losses(): RetentionLoss[] {
    return [...this.#losses.values()];
  }

  /** Offsets lost in all, since start-up. */
  get total(): bigint {
    return this.#total;
  }

  /**
   * The check before joining the group (once consumption restarts from the log start the
   * evidence is gone). Kafka just restarted may answer NOT_COORDINATOR for a while: retried a
   * few times, then only logged, since failing the start-up would stop the consumer for good.
   */
  async checkBeforeJoining(
    read: () => Promise<PartitionLag[]>,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      this.check(
        await retry(read, {
          maxAttempts: 6,
          minTimeout: 500,
          maxTimeout: 4000,
          signal,
        }),
      );
    } catch (err) {
      if (signal.aborted) return;
      this.#log.warn("cannot check retention before joining the group", {
        err,
      });
    }
  }

  /** Compares each committed offset with the log start; a commit below it is a loss. */
  check(partitions: PartitionLag[]): void {
    for (const p of partitions) {
      // kafkajs commits -2 ("earliest") after resetting an out-of-range offset: not a position.
      if (
        p.committed === null || BigInt(p.committed) < 0n ||
        BigInt(p.committed) >= BigInt(p.start)
      ) continue;
      const prev = this.#losses.get(p.partition);
      const from = prev && prev.committed === p.committed
        ? BigInt(prev.start)
        : BigInt(p.committed);
      const lost = BigInt(p.start) - from;
      if (lost <= 0n) continue;
      const records =
        BigInt(prev?.committed === p.committed ? prev.records : 0) + lost;
      this.#losses.set(p.partition, {
        partition: p.partition,
        committed: p.committed,
        start: p.start,
        records: records.toString(),
        seen_at: new Date().toISOString(),
      });
      this.#total += lost;
      this.#log.error("records deleted by retention before they were written", {
        topic: this.#topic,
        partition: p.partition,
        records_lost: Number(lost),
        committed: p.committed,
        log_start: p.start,
      });
    }
  }
}
