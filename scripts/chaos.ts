/**
 * @module `deno task chaos [--long] [--seed N] [--copies K] [--faults F]`: runs the reliability
 * suite (tests/chaos/harness.ts) on its own Kafka and PostgreSQL (on free ports) and prints
 * the report as JSON. Exit 0 when nothing was lost, doubled or wrong.
 */
import { parseArgs } from "node:util";
import {
  type ChaosOptions,
  runChaos,
  stopChaosServices,
} from "../tests/chaos/harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    long: { type: "boolean", default: false },
    seed: { type: "string" },
    copies: { type: "string" },
    faults: { type: "string" },
    "timeout-min": { type: "string" },
    "reveal-s": { type: "string" },
    "log-dir": { type: "string" },
    "keep-services": { type: "boolean", default: false },
  },
});
const long = values.long;
// Long form: 264 copies of the 3,796 recorded rows = 1,002,144 rows.
const copies = Number(values.copies ?? (long ? 264 : 2));
const options: ChaosOptions = {
  seed: Number(values.seed ?? 20180307),
  copies,
  faults: Number(values.faults ?? (long ? 24 : 8)),
  timeoutMs: Number(values["timeout-min"] ?? (long ? 90 : 6)) * 60_000,
  revealSeconds: Number(values["reveal-s"] ?? (long ? 1200 : 60)),
  logDir: values["log-dir"],
  onProgress: (line) =>
    Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`)),
};
const report = await runChaos(options);
if (values["keep-services"]) {
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `services kept: Kafka 127.0.0.1:${options.kafkaPort}, PostgreSQL 127.0.0.1:${options.pgPort}\n`,
    ),
  );
} else await stopChaosServices(options);
Deno.stdout.writeSync(
  new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"),
);
Deno.exit(report.ok && report.harness_failures.length === 0 ? 0 : 1);
