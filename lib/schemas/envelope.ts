/** @module The zod schema of the Kafka record value: the versioned envelope around a source row. */
import { z } from "zod";

/** The versioned Kafka message value: the complete source row plus where it came from. */
export const EnvelopeSchema = z.object({
  v: z.literal(1),
  source: z.enum(["action_api", "eventstreams"]),
  wiki: z.string().min(1),
  server_name: z.string().min(1),
  fetched_at: z.iso.datetime({ offset: true }),
  // A plain object; its fields are the source schema's business (a record schema would
  // re-validate every key, a third of the decode time).
  row: z.custom<Record<string, unknown>>(
    (v) => typeof v === "object" && v !== null && !Array.isArray(v),
    "Expected an object",
  ),
});

/** A Kafka message value as published by the producer. */
export type Envelope = z.infer<typeof EnvelopeSchema>;
