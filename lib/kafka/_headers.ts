/** @module Kafka record headers as plain strings (shared by the readers in this folder). */
import type { IHeaders } from "kafkajs";

/** Decodes kafkajs headers to strings; a repeated header joins its values with commas. */
export function headersToStrings(
  headers: IHeaders | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(",") : v.toString();
  }
  return out;
}
