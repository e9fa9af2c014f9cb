/** @module The producer's readiness: topic metadata through one long-lived Kafka admin client. */
import type { Admin, Kafka } from "../kafka/client.ts";
import type { CheckResult } from "../http/app.ts";
import { describeError } from "../core/errors.ts";

/**
 * Ready when the events topic's metadata can be read, through one long-lived admin client that
 * is connected on first use and replaced only after it failed (never one connection per probe).
 */
export function kafkaReadiness(
  kafka: Kafka,
  topic: string,
): { check(): Promise<CheckResult>; close(): Promise<void> } {
  let admin: Promise<Admin> | undefined;
  const connect = async () => {
    const a = kafka.admin();
    await a.connect();
    return a;
  };
  return {
    async check() {
      const current = admin ??= connect();
      try {
        await (await current).fetchTopicMetadata({ topics: [topic] });
        return { ok: true };
      } catch (err) {
        if (admin === current) admin = undefined;
        current.then((a) => a.disconnect()).catch(() => {});
        return {
          ok: false,
          reason: `Kafka metadata unavailable: ${describeError(err)}`,
          details: { dependency: "kafka" },
        };
      }
    },
    async close() {
      const current = admin;
      admin = undefined;
      await current?.then((a) => a.disconnect()).catch(() => {});
    },
  };
}
