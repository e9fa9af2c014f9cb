/** @module The batch consumer's kafkajs event hooks: fetch timing and commits past marker-only fetches. */
import type { Consumer } from "kafkajs";
import type { Logger } from "../core/log.ts";
import type { BatchConsumerOptions } from "./batch_consumer.ts";
import type { WriteBehind } from "./_write_behind.ts";

/** What the consumer's pieces share. */
export interface Pipeline {
  consumer: Consumer;
  options: BatchConsumerOptions;
  log: Logger;
  chain: WriteBehind;
  stopping: boolean;
}

/** Adds the duration of each fetch that delivered records (idle long polls are not work). */
export function timeFetches(
  consumer: Consumer,
  times: BatchConsumerOptions["times"],
): void {
  if (!times) return;
  let last = 0;
  consumer.on(consumer.events.FETCH, (e) => {
    last = e.payload.duration;
  });
  consumer.on(consumer.events.START_BATCH_PROCESS, (e) => {
    if (e.payload.batchSize === 0) return;
    times.fetch += last;
    last = 0;
  });
}

/**
 * A fetch that held only transaction markers (or aborted records) is resolved by kafkajs
 * without calling eachBatch; commit past it so a caught-up group shows zero lag. kafkajs emits
 * this with batchSize 0 only for such filtered fetches; firstOffset is null when no record at
 * or after the fetched offset came back, and then there is nothing to skip.
 */
export function commitPastMarkerOnlyFetches(ctx: Pipeline): void {
  const { consumer, options, log, chain } = ctx;
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.batchSize !== 0 || e.payload.firstOffset === null) return;
    const { topic, partition } = e.payload;
    const offset = (BigInt(e.payload.lastOffset) + 1n).toString();
    const generation = chain.generation;
    // Behind the partition's write in flight: never commit past records not yet written.
    chain.push(partition, null, async () => {
      if (chain.generation !== generation || chain.hasHole(partition)) return;
      await consumer.commitOffsets([{ topic, partition, offset }])
        .then(() => options.onCommitted?.({ ...e.payload, offset }))
        .catch((err) => log.debug("marker commit skipped", { err }));
    });
  });
}
