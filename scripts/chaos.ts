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

const USAGE =
  `Usage: ./wikistream chaos [--long] [--seed N] [--copies K] [--faults F]
         [--timeout-min M] [--reveal-s S] [--log-dir DIR] [--keep-services]

Runs the reliability suite on its own Kafka and PostgreSQL (free ports) and prints the report
as JSON; exit 0 when nothing was lost, doubled or wrong. See docs/guarantees.md.

Flags:
  --long             The million-row form (264 copies, 24 faults, 90 min budget)
  --seed N           Seed of the fault schedule (default 20180307)
  --copies K         Copies of the recorded rows (default 2; --long 264)
  --faults F         Faults to inject (default 8; --long 24)
  --timeout-min M    Time budget in minutes (default 6; --long 90)
  --reveal-s S       Seconds over which the scaled wiki reveals its rows (default 60)
  --log-dir DIR      Keep the processes' logs there
  --keep-services    Leave the chaos Kafka and PostgreSQL running afterwards
  -h, --help         Print this help and exit
`;

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
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  Deno.stdout.writeSync(new TextEncoder().encode(USAGE));
  Deno.exit(0);
}
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
