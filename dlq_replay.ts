/** @module `deno task dlq:replay [--reason r,...] [--since T] [--until T] [--limit N] [--dry-run] [--include-replayed]`: dead letters back through the sink. */
import { boot, helpRequested, printUsage } from "./lib/core/cli.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { writeLine } from "./lib/core/log.ts";
import { runDlqReplay } from "./lib/pipeline/dlq_replay.ts";

/** Runs the replay; returns 0 when every selected dead letter was replayed, 1 when some still fail (or on failure), 2 on bad flags. */
export async function main(args = Deno.args): Promise<number> {
  if (helpRequested(args)) return printUsage("dlq:replay");
  const booted = boot("dlq-replay", args, [
    "reasons",
    "since",
    "until",
    "limit",
    "dryRun",
    "includeReplayed",
  ]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  using life = createLifecycle(log);
  try {
    const summary = await runDlqReplay(config, {
      ...flags,
      log,
      signal: life.signal,
      print: writeLine,
    });
    life.stop("replay complete");
    return summary.dry_run || summary.still_failing === 0 ? 0 : 1;
  } catch (err) {
    const stopped = life.signal.aborted;
    log.error(stopped ? "dlq replay interrupted" : "dlq replay failed", {
      err,
    });
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
