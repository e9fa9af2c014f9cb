/** @module `deno task audit --since <ISO-8601> --until <ISO-8601> [--wikis a,b] [--repair]`: compares PostgreSQL with the Action API. */
import { boot, helpRequested, printUsage } from "./lib/core/cli.ts";
import { ConfigError } from "./lib/core/errors.ts";
import { createLifecycle } from "./lib/core/lifecycle.ts";
import { writeLine } from "./lib/core/log.ts";
import { runAudit } from "./lib/pipeline/audit.ts";

/** Runs the audit; returns 0 when nothing is missing, 1 when something is (or on failure), 2 on bad flags. */
export async function main(args = Deno.args): Promise<number> {
  if (helpRequested(args)) return printUsage("audit");
  const booted = boot("audit", args, ["since", "until", "wikis", "repair"]);
  if ("exitCode" in booted) return booted.exitCode;
  const { config, flags, log } = booted;
  if (!flags.since || !flags.until) {
    const err = new ConfigError(
      "Invalid flags: --since and --until are required",
    );
    log.error(err.message, { error: "ConfigError" });
    return 2;
  }
  using life = createLifecycle(log);
  try {
    const reports = await runAudit(config, {
      since: flags.since,
      until: flags.until,
      wikis: flags.wikis,
      repair: flags.repair,
      log,
      signal: life.signal,
      print: writeLine,
    });
    life.stop("audit complete");
    return reports.some((r) => r.missing > 0) ? 1 : 0;
  } catch (err) {
    log.error("audit failed", { err });
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
