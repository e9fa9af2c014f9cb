/** @module Test helpers that read back what was published to Kafka. */
import { topicNames } from "../lib/pipeline/producer.ts";
import { createKafka } from "../lib/kafka/client.ts";
import { readToEnd } from "../lib/kafka/compacted.ts";
import { captureLogger, type testConfig } from "./_helpers.ts";

/** Reads every event in the topic: rcid -> number of times published. */
export async function publishedRcids(
  config: ReturnType<typeof testConfig>,
): Promise<Map<string, number>> {
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: "test-reader",
    log: captureLogger("error"),
  });
  const counts = new Map<string, number>();
  await readToEnd(kafka, topicNames(config.KAFKA_TOPIC).events, (r) => {
    const env = JSON.parse(new TextDecoder().decode(r.value!));
    const id = String(env.row.rcid);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }, { clientId: "test-reader", log: captureLogger("error") });
  return counts;
}
