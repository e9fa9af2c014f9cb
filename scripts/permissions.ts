/**
 * @module Prints the `--allow-net` and `--allow-read` flags of a task for the current
 * configuration (lib/core/permissions.ts); deno.json's tasks splice them in with `$(...)`:
 *   deno run --allow-env=<config keys> --ignore-env scripts/permissions.ts consume
 */
import {
  LOCAL_SERVICE_KEYS,
  permissionFlags,
  type Task,
} from "../lib/core/permissions.ts";
import { configEnv } from "../lib/core/config.ts";

const TASKS = [
  "produce",
  "consume",
  "migrate",
  "retention",
  "audit",
  "dlq:replay",
  "start",
];

if (import.meta.main) {
  const task = Deno.args[0] ?? "";
  if (!TASKS.includes(task)) {
    // deno-lint-ignore no-console
    console.error(`usage: permissions.ts ${TASKS.join("|")}`);
    Deno.exit(64);
  }
  const env: Record<string, string | undefined> = configEnv();
  for (const k of LOCAL_SERVICE_KEYS) env[k] = Deno.env.get(k);
  // deno-lint-ignore no-console
  console.log(permissionFlags(task as Task, env).join(" "));
}
